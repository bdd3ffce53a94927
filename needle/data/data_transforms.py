"""Random data augmentations on H x W x C numpy images, drawing from numpy's global RNG as the course does."""
import numpy as np

__all__ = ["Transform", "RandomFlipHorizontal", "RandomCrop"]


class Transform:
    """A callable that maps one image to another."""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _check_hwc(name: str, img: np.ndarray) -> None:
    if np.ndim(img) != 3:
        raise ValueError(f"{name}: expected an H x W x C image, got shape {np.shape(img)}")


class RandomFlipHorizontal(Transform):
    """With probability p (one `np.random.rand()` draw) flip the image left-right (the W axis)."""

    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, img: np.ndarray) -> np.ndarray:
        _check_hwc("RandomFlipHorizontal", img)
        flip_img = np.random.rand() < self.p
        return np.flip(img, axis=1) if flip_img else img


class RandomCrop(Transform):
    """Zero-pad H and W by `padding`, then cut the H x W window shifted by (shift_x, shift_y) rows/columns.

    The shifts are one draw `np.random.randint(-padding, padding + 1, size=2)`, as in the course.
    """

    def __init__(self, padding: int = 3):
        self.padding = padding

    def __call__(self, img: np.ndarray) -> np.ndarray:
        _check_hwc("RandomCrop", img)
        p = self.padding
        shift_x, shift_y = np.random.randint(low=-p, high=p + 1, size=2)
        h, w = img.shape[:2]
        padded = np.pad(img, ((p, p), (p, p), (0, 0)))
        return padded[p + shift_x : p + shift_x + h, p + shift_y : p + shift_y + w, :]
