"""Generative models (the course's GAN lecture, and denoising diffusion): the 2-D distributions they are shown on,
the GAN losses and its alternating training step, the DDPM noise schedule, loss and ancestral sampler, and the
training loops.

Run `python -m needle.apps.generative gan` (a GAN on a ring of eight Gaussians, or `--data mnist` on the bundled
digits) or `python -m needle.apps.generative diffusion` (DDPM on two moons); each prints its progress."""
from __future__ import annotations

import argparse
from typing import Callable, NamedTuple, Optional, Sequence

import numpy as np

from needle import init, nn, ops, optim
from needle.autograd import Tensor
from needle.data import mnist_split

__all__ = ["ring_of_gaussians", "ring_centres", "modes_covered", "two_moons", "mnist_images", "mlp", "softplus",
           "discriminator_loss", "generator_loss", "gan_step", "train_gan", "generate", "Schedule", "noise_schedule",
           "q_sample", "diffusion_loss", "Denoiser", "p_sample_step", "sample", "train_diffusion"]


# --- data -----------------------------------------------------------------------------------------------------------

def ring_of_gaussians(n: int, rng: np.random.Generator, modes: int = 8, radius: float = 2.0,
                      std: float = 0.05) -> np.ndarray:
    """n points (float32, (n, 2)) from `modes` small Gaussians evenly spaced on a circle: the classic test of
    whether a GAN covers every mode."""
    which = rng.integers(0, modes, size=n)
    angle = 2 * np.pi * which / modes
    centres = radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return (centres + std * rng.standard_normal((n, 2))).astype(np.float32)


def ring_centres(modes: int = 8, radius: float = 2.0) -> np.ndarray:
    """The centres of ring_of_gaussians' modes, (modes, 2)."""
    angle = 2 * np.pi * np.arange(modes) / modes
    return radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)


def modes_covered(points: np.ndarray, modes: int = 8, radius: float = 2.0, std: float = 0.05,
                  min_share: float = 0.02) -> tuple[int, float]:
    """(how many modes of the ring hold at least `min_share` of the points within 4 std of their centre, the share
    of all points that land near some mode): the usual measure of mode collapse on this distribution."""
    dist = np.linalg.norm(points[:, None, :] - ring_centres(modes, radius)[None], axis=2)
    near = dist.min(axis=1) < 4 * std
    counts = np.bincount(dist.argmin(axis=1)[near], minlength=modes)
    return int((counts >= min_share * len(points)).sum()), float(near.mean())


def two_moons(n: int, rng: np.random.Generator, noise: float = 0.06) -> np.ndarray:
    """n points (float32, (n, 2)) on two interleaved half circles, centred and scaled to about unit variance."""
    upper = rng.random(n) < 0.5
    angle = np.pi * rng.random(n)
    x = np.where(upper, np.cos(angle), 1 - np.cos(angle))
    y = np.where(upper, np.sin(angle), 0.5 - np.sin(angle))
    points = np.stack([x - 0.5, y - 0.25], axis=1) / 0.7
    return (points + noise * rng.standard_normal((n, 2))).astype(np.float32)


def mnist_images() -> np.ndarray:
    """The bundled MNIST digits (10,000, 784) float32, scaled to [-1, 1] (a Tanh generator's range)."""
    (X_train, _), (X_test, _) = mnist_split()
    return np.concatenate([X_train, X_test]) * 2 - 1


# --- networks -------------------------------------------------------------------------------------------------------

def mlp(sizes: Sequence[int], out_activation: Optional[nn.Module] = None, device=None,
        dtype: str = "float32") -> nn.Sequential:
    """Linear layers of the given sizes with ReLU between them (and `out_activation` after the last)."""
    if len(sizes) < 2:
        raise ValueError(f"mlp: need at least an input and an output size, got {list(sizes)}")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b, device=device, dtype=dtype))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    if out_activation is not None:
        layers.append(out_activation)
    return nn.Sequential(*layers)


# --- GAN ------------------------------------------------------------------------------------------------------------

def softplus(x: Tensor) -> Tensor:
    """log(1 + exp(x)) = logsumexp(x, 0) without overflow, and with the exact gradient sigmoid(x) everywhere
    (relu(x) + log(1 + exp(-|x|)) has the right values but a zero gradient at x = 0, where relu's is 0)."""
    axis = len(x.shape)
    zeros = init.zeros(*x.shape, device=x.device, dtype=x.dtype)
    return ops.logsumexp(ops.stack([x, zeros], axis=axis), axes=(axis,))


def _mean(x: Tensor) -> Tensor:
    return x.sum() / int(np.prod(x.shape))


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Binary cross-entropy of D's logits, real labelled 1 and fake 0: mean(-log D(x)) + mean(-log(1 - D(G(z))))
    with D = sigmoid(logit), i.e. mean(softplus(-real)) + mean(softplus(fake))."""
    return _mean(softplus(-real_logits)) + _mean(softplus(fake_logits))


def generator_loss(fake_logits: Tensor, saturating: bool = False) -> Tensor:
    """The non-saturating loss mean(-log D(G(z))) = mean(softplus(-fake)); with `saturating`, the minimax game's
    own mean(log(1 - D(G(z)))) = -mean(softplus(fake)), whose gradient vanishes while D rejects the fakes."""
    if saturating:
        return -_mean(softplus(fake_logits))
    return _mean(softplus(-fake_logits))


def gan_step(generator: nn.Module, discriminator: nn.Module, opt_g: optim.Optimizer, opt_d: optim.Optimizer,
             real: Tensor, z: Tensor) -> tuple[float, float]:
    """One alternating update: the discriminator on the real batch and on G(z) (detached: its loss must not move
    the generator), then the generator through the updated discriminator on the same z. Returns the two losses
    (discriminator, generator) as floats."""
    fake = generator(z).detach()
    loss_d = discriminator_loss(discriminator(real), discriminator(fake))
    opt_d.reset_grad()
    loss_d.backward()
    opt_d.step()
    loss_g = generator_loss(discriminator(generator(z)))
    opt_g.reset_grad()
    loss_g.backward()
    opt_g.step()
    return float(loss_d.numpy()), float(loss_g.numpy())


def train_gan(generator: nn.Module, discriminator: nn.Module, sample_real: Callable[[int], np.ndarray], *,
              steps: int, batch_size: int, latent_dim: int, rng: np.random.Generator, lr: float = 1e-3,
              beta1: float = 0.5, device=None, every: int = 0,
              callback: Optional[Callable[[int, dict], None]] = None) -> list[dict]:
    """Adam (beta1 0.5, as GANs usually train) on both networks for `steps` gan_steps with fresh real batches and
    fresh Gaussian z; returns one {"step", "d_loss", "g_loss"} per step; `callback(step, record)` every `every` steps
    (and after the last)."""
    opt_g = optim.Adam(generator.parameters(), lr=lr, beta1=beta1)
    opt_d = optim.Adam(discriminator.parameters(), lr=lr, beta1=beta1)
    generator.train()
    discriminator.train()
    history = []
    for step in range(1, steps + 1):
        real = Tensor(sample_real(batch_size), device=device, requires_grad=False)
        z = Tensor(rng.standard_normal((batch_size, latent_dim)).astype(np.float32), device=device,
                   requires_grad=False)
        d_loss, g_loss = gan_step(generator, discriminator, opt_g, opt_d, real, z)
        record = {"step": step, "d_loss": d_loss, "g_loss": g_loss}
        history.append(record)
        if callback is not None and ((every and step % every == 0) or step == steps):
            callback(step, record)
    return history


def generate(generator: nn.Module, z: np.ndarray, device=None) -> np.ndarray:
    """G(z) as a numpy array (no graph kept)."""
    return generator(Tensor(z.astype(np.float32), device=device, requires_grad=False)).numpy()


# --- denoising diffusion (DDPM) -------------------------------------------------------------------------------------

class Schedule(NamedTuple):
    """The forward process q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t I) for t = 0 .. T-1, in float64:
    betas, alphas = 1 - betas, and alpha_bars, their running products, so q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0,
    (1 - alpha_bar_t) I)."""

    betas: np.ndarray
    alphas: np.ndarray
    alpha_bars: np.ndarray

    @property
    def T(self) -> int:
        return len(self.betas)


def noise_schedule(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> Schedule:
    """DDPM's linear schedule: beta_t from beta_start to beta_end over T steps, with alphas and alpha_bars."""
    if T < 1 or not 0 < beta_start <= beta_end < 1:
        raise ValueError(f"noise_schedule: need T >= 1 and 0 < beta_start <= beta_end < 1, got T={T}, "
                         f"beta_start={beta_start}, beta_end={beta_end}")
    betas = np.linspace(beta_start, beta_end, T, dtype=np.float64)
    alphas = 1.0 - betas
    return Schedule(betas, alphas, np.cumprod(alphas))


def _column(values: np.ndarray, like: Tensor) -> Tensor:
    """One number per sample as a constant (N, D) Tensor broadcast along like's feature axis."""
    col = Tensor(np.asarray(values).reshape(-1, 1), device=like.device, dtype=like.dtype, requires_grad=False)
    return col.broadcast_to(like.shape)


def q_sample(x0: Tensor, t: np.ndarray, noise: Tensor, schedule: Schedule) -> Tensor:
    """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise: a sample of q(x_t | x_0) in one step, for a
    step t[i] per sample."""
    ab = schedule.alpha_bars[np.asarray(t)]
    return _column(np.sqrt(ab), x0) * x0 + _column(np.sqrt(1 - ab), x0) * noise


def diffusion_loss(model: nn.Module, x0: Tensor, t: np.ndarray, noise: Tensor, schedule: Schedule) -> Tensor:
    """DDPM's simplified objective: the mean squared error between the noise mixed into x_t and the model's
    prediction of it, model(x_t, t), averaged over every number."""
    diff = model(q_sample(x0, t, noise, schedule), t) - noise
    return _mean(diff * diff)


def p_sample_step(model: nn.Module, x_t: Tensor, t: int, z: Tensor, schedule: Schedule) -> Tensor:
    """One step of the ancestral sampler, x_{t-1} from x_t: the mean (x_t - beta_t / sqrt(1 - alpha_bar_t)
    eps(x_t, t)) / sqrt(alpha_t) plus sqrt(beta_t) z, with no noise added at the last step (t = 0). Detached."""
    n = x_t.shape[0]
    eps = model(x_t, np.full(n, t))
    beta, alpha, ab = (float(a[t]) for a in schedule)
    mean = (x_t - eps * float(beta / np.sqrt(1 - ab))) / float(np.sqrt(alpha))
    if t > 0:
        mean = mean + z * float(np.sqrt(beta))
    return mean.detach()


class Denoiser(nn.Module):
    """eps(x_t, t): a small MLP on x_t with a sinusoidal embedding of t added to its first hidden layer (the same
    as concatenating the two and one Linear)."""

    def __init__(self, dim: int = 2, hidden: int = 128, time_dim: int = 32, layers: int = 3, device=None,
                 dtype: str = "float32"):
        super().__init__()
        self.embed = nn.SinusoidalEmbedding(time_dim, device=device, dtype=dtype)
        self.x_in = nn.Linear(dim, hidden, device=device, dtype=dtype)
        self.t_in = nn.Linear(time_dim, hidden, device=device, dtype=dtype)
        self.body = mlp([hidden] * layers + [dim], device=device, dtype=dtype)

    def forward(self, x: Tensor, t: np.ndarray) -> Tensor:
        return self.body(ops.relu(self.x_in(x) + self.t_in(self.embed(t))))


def sample(model: nn.Module, schedule: Schedule, n: int, dim: int, rng: np.random.Generator, *,
           keep: Sequence[int] = (), device=None) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """n samples drawn by running p_sample_step from x_T ~ N(0, I) down to x_0; also x_t for each t in `keep`
    (the state before the step from t, so keep=(T,) gives the starting noise)."""
    x = Tensor(rng.standard_normal((n, dim)).astype(np.float32), device=device, requires_grad=False)
    kept = {}
    for t in range(schedule.T - 1, -1, -1):
        if t + 1 in keep:
            kept[t + 1] = x.numpy()
        z = Tensor(rng.standard_normal((n, dim)).astype(np.float32), device=device, requires_grad=False)
        x = p_sample_step(model, x, t, z, schedule)
    if 0 in keep:
        kept[0] = x.numpy()
    return x.numpy(), kept


def train_diffusion(model: nn.Module, data: np.ndarray, schedule: Schedule, *, steps: int, batch_size: int,
                    rng: np.random.Generator, lr: float = 2e-3, device=None, every: int = 0,
                    callback: Optional[Callable[[int, float], None]] = None) -> list[float]:
    """Adam on diffusion_loss with random batches of `data`, random steps t and fresh noise; returns the loss of
    every step; `callback(step, loss)` every `every` steps (and after the last)."""
    opt = optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    for step in range(1, steps + 1):
        batch = data[rng.integers(0, len(data), size=batch_size)]
        x0 = Tensor(batch, device=device, requires_grad=False)
        t = rng.integers(0, schedule.T, size=batch_size)
        noise = Tensor(rng.standard_normal(batch.shape).astype(np.float32), device=device, requires_grad=False)
        loss = diffusion_loss(model, x0, t, noise, schedule)
        opt.reset_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.numpy()))
        if callback is not None and ((every and step % every == 0) or step == steps):
            callback(step, losses[-1])
    return losses


# --- command line ---------------------------------------------------------------------------------------------------

def _gan_main(args: argparse.Namespace, rng: np.random.Generator) -> None:
    if args.data == "mnist":
        images = mnist_images()
        latent, sizes_g, sizes_d = 64, [64, 256, 784], [784, 256, 1]
        sample_real = lambda n: images[rng.integers(0, len(images), size=n)]
        out = nn.Tanh()
    else:
        latent, sizes_g, sizes_d = 2, [2, 64, 64, 2], [2, 64, 64, 1]
        sample_real = lambda n: ring_of_gaussians(n, rng)
        out = None
    generator, discriminator = mlp(sizes_g, out), mlp(sizes_d)

    def show(step: int, record: dict) -> None:
        line = f"step {step}: discriminator loss {record['d_loss']:.3f}, generator loss {record['g_loss']:.3f}"
        if args.data == "ring":
            covered, share = modes_covered(generate(generator, rng.standard_normal((1000, latent))))
            line += f", modes covered {covered}/8, {share:.0%} of samples on a mode"
        print(line, flush=True)

    train_gan(generator, discriminator, sample_real, steps=args.steps or 2000, batch_size=args.batch_size,
              latent_dim=latent, rng=rng, lr=args.lr or 1e-3, every=args.every, callback=show)


def _diffusion_main(args: argparse.Namespace, rng: np.random.Generator) -> None:
    schedule = noise_schedule(args.T, 1e-4, min(0.5, 20 / args.T))  # DDPM's 0.02 at T = 1000; 0.2 at T = 100
    data = two_moons(10000, rng)
    model = Denoiser()
    train_diffusion(model, data, schedule, steps=args.steps or 3000, batch_size=args.batch_size, rng=rng,
                    lr=args.lr or 2e-3, every=args.every,
                    callback=lambda step, loss: print(f"step {step}: loss {loss:.4f}", flush=True))
    samples, _ = sample(model, schedule, 2000, 2, rng)
    stats = {name: (np.round(x.mean(axis=0), 2).tolist(), np.round(x.std(axis=0), 2).tolist())
             for name, x in (("samples", samples), ("data", data))}
    print(f"samples: mean {stats['samples'][0]} (data {stats['data'][0]}), std {stats['samples'][1]} "
          f"(data {stats['data'][1]})")


def main(argv=None) -> None:
    """`gan` trains a GAN (on a ring of 8 Gaussians, or `--data mnist`), `diffusion` a DDPM on two moons."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("model", choices=["gan", "diffusion"])
    parser.add_argument("--data", choices=["ring", "mnist"], default="ring", help="the GAN's data")
    parser.add_argument("--steps", type=int, default=None, help="default: 2000 (gan), 3000 (diffusion)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=None,
                        help="Adam's learning rate (default 1e-3 gan, 2e-3 diffusion)")
    parser.add_argument("--T", type=int, default=100, help="diffusion steps")
    parser.add_argument("--every", type=int, default=200, help="print every this many steps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    np.random.seed(args.seed)  # needle's initialisers draw from numpy's global generator
    rng = np.random.default_rng(args.seed)
    if args.model == "gan":
        _gan_main(args, rng)
    else:
        _diffusion_main(args, rng)


if __name__ == "__main__":
    main()
