"""Chapter 11 checks: each passes needle's reference and the textbook's solution, reports a stub as not attempted, and
fails the classic mistakes (several per exercise) with a message that names the exercise."""

import numpy as np
import pytest

import needle as ndl
from needle import course, ops
from needle.apps import generative as gen
from needle.course.errors import CheckFailed

from chapter_cases import ChapterContract, ref

IDS = course.exercises("generative")


def _mean(x):
    return x.sum() / int(np.prod(x.shape))


# --- planted mistakes: the GAN losses -------------------------------------------------------------------------------

def d_loss_through_sigmoid(real_logits, fake_logits):
    """The textbook formula taken literally: right in float64, inf in float32 once a logit is large."""
    return -_mean(ops.log(ops.sigmoid(real_logits))) - _mean(ops.log(1 - ops.sigmoid(fake_logits)))


def d_loss_labels_swapped(real_logits, fake_logits):
    return _mean(gen.softplus(real_logits)) + _mean(gen.softplus(-fake_logits))


def d_loss_one_mean_over_both(real_logits, fake_logits):
    n = real_logits.shape[0] + fake_logits.shape[0]
    return (gen.softplus(-real_logits).sum() + gen.softplus(fake_logits).sum()) / n


def d_loss_summed(real_logits, fake_logits):
    return gen.softplus(-real_logits).sum() + gen.softplus(fake_logits).sum()


def d_loss_in_numpy(real_logits, fake_logits):
    r, f = real_logits.numpy(), fake_logits.numpy()
    return ndl.Tensor(np.logaddexp(0, -r).mean() + np.logaddexp(0, f).mean(), dtype=real_logits.dtype)


def g_loss_always_saturating(fake_logits, saturating=False):
    return -_mean(gen.softplus(fake_logits))


def g_loss_saturating_sign(fake_logits, saturating=False):
    return _mean(gen.softplus(fake_logits)) if saturating else _mean(gen.softplus(-fake_logits))


def g_loss_through_sigmoid(fake_logits, saturating=False):
    if saturating:
        return _mean(ops.log(1 - ops.sigmoid(fake_logits)))
    return -_mean(ops.log(ops.sigmoid(fake_logits)))


def g_loss_labels_of_the_discriminator(fake_logits, saturating=False):
    """The discriminator's term for fakes (label 0): it teaches the generator to look fake."""
    return _mean(gen.softplus(fake_logits))


# --- planted mistakes: the GAN step ---------------------------------------------------------------------------------

def _d_update(G, D, opt_d, real, z, detach=True):
    fake = G(z).detach() if detach else G(z)
    loss_d = gen.discriminator_loss(D(real), D(fake))
    opt_d.reset_grad()
    loss_d.backward()
    opt_d.step()
    return loss_d


def _g_update(G, D, opt_g, z):
    loss_g = gen.generator_loss(D(G(z)))
    opt_g.reset_grad()
    loss_g.backward()
    opt_g.step()
    return loss_g


def step_generator_first(G, D, opt_g, opt_d, real, z):
    loss_g = _g_update(G, D, opt_g, z)
    loss_d = _d_update(G, D, opt_d, real, z)
    return float(loss_d.numpy()), float(loss_g.numpy())


def step_moves_g_with_the_discriminators_loss(G, D, opt_g, opt_d, real, z):
    """Fakes not detached and opt_g stepped after the discriminator's backward: G climbs D's loss."""
    loss_d = _d_update(G, D, opt_d, real, z, detach=False)
    opt_g.step()
    loss_g = _g_update(G, D, opt_g, z)
    return float(loss_d.numpy()), float(loss_g.numpy())


def step_moves_d_with_the_generators_loss(G, D, opt_g, opt_d, real, z):
    loss_d = _d_update(G, D, opt_d, real, z)
    loss_g = gen.generator_loss(D(G(z)))
    opt_g.reset_grad()
    opt_d.reset_grad()
    loss_g.backward()
    opt_g.step()
    opt_d.step()
    return float(loss_d.numpy()), float(loss_g.numpy())


def step_with_the_stale_discriminator(G, D, opt_g, opt_d, real, z):
    """Reuses D(G(z)) from before the discriminator's update for the generator's loss."""
    fake_logits = D(G(z))
    loss_d = gen.discriminator_loss(D(real), D(G(z).detach()))
    opt_d.reset_grad()
    loss_d.backward()
    opt_d.step()
    loss_g = gen.generator_loss(fake_logits)
    opt_g.reset_grad()
    loss_g.backward()
    opt_g.step()
    return float(loss_d.numpy()), float(loss_g.numpy())


def step_real_and_fake_swapped(G, D, opt_g, opt_d, real, z):
    loss_d = gen.discriminator_loss(D(G(z).detach()), D(real))
    opt_d.reset_grad()
    loss_d.backward()
    opt_d.step()
    loss_g = _g_update(G, D, opt_g, z)
    return float(loss_d.numpy()), float(loss_g.numpy())


def step_without_detach(G, D, opt_g, opt_d, real, z):
    """Right numbers in needle (a backward overwrites .grad), but the discriminator's backward runs through G."""
    loss_d = _d_update(G, D, opt_d, real, z, detach=False)
    loss_g = _g_update(G, D, opt_g, z)
    return float(loss_d.numpy()), float(loss_g.numpy())


def step_returns_tensors(G, D, opt_g, opt_d, real, z):
    return _d_update(G, D, opt_d, real, z), _g_update(G, D, opt_g, z)


# --- planted mistakes: diffusion ------------------------------------------------------------------------------------

def _schedule_from(betas, alpha_bars):
    return gen.Schedule(betas, 1 - betas, alpha_bars)


def schedule_cumsum(T, beta_start, beta_end):
    betas = np.linspace(beta_start, beta_end, T)
    return _schedule_from(betas, 1 - np.cumsum(betas))


def schedule_exclusive_product(T, beta_start, beta_end):
    """alpha_bar_0 = 1: the product of the alphas *before* t."""
    betas = np.linspace(beta_start, beta_end, T)
    return _schedule_from(betas, np.concatenate([[1.0], np.cumprod(1 - betas)[:-1]]))


def schedule_product_of_betas(T, beta_start, beta_end):
    betas = np.linspace(beta_start, beta_end, T)
    return _schedule_from(betas, np.cumprod(betas))


def schedule_without_the_end(T, beta_start, beta_end):
    betas = np.linspace(beta_start, beta_end, T, endpoint=False)
    return _schedule_from(betas, np.cumprod(1 - betas))


def schedule_float32(T, beta_start, beta_end):
    betas = np.linspace(beta_start, beta_end, T, dtype=np.float32)
    return gen.Schedule(betas, 1 - betas, np.cumprod(1 - betas))


def _col(values, like):
    return ndl.Tensor(np.asarray(values).reshape(-1, 1), dtype=like.dtype, requires_grad=False).broadcast_to(like.shape)


def _loss_with(x_t_of, target_of=None, reduce=_mean):
    def diffusion_loss(model, x0, t, noise, schedule):
        x_t = x_t_of(x0, noise, schedule.alpha_bars[t], schedule.alphas[t])
        diff = model(x_t, t) - (noise if target_of is None else target_of(x0, noise))
        return reduce(diff * diff)

    return diffusion_loss


loss_without_square_roots = _loss_with(lambda x0, n, ab, a: _col(ab, x0) * x0 + _col(1 - ab, x0) * n)
loss_with_alpha_t = _loss_with(lambda x0, n, ab, a: _col(np.sqrt(a), x0) * x0 + _col(np.sqrt(1 - a), x0) * n)
_closed_form = lambda x0, n, ab, a: _col(np.sqrt(ab), x0) * x0 + _col(np.sqrt(1 - ab), x0) * n
loss_predicting_x0 = _loss_with(_closed_form, target_of=lambda x0, noise: x0)
loss_summed = _loss_with(_closed_form, reduce=lambda d: d.sum())
loss_mean_over_samples_only = _loss_with(_closed_form, reduce=lambda d: d.sum() / d.shape[0])


def _step_with(noise_at_zero=False, sigma=lambda beta: np.sqrt(beta), eps_scale=lambda beta, ab: beta / np.sqrt(1 - ab),
               rescale=lambda alpha, ab: np.sqrt(alpha), detach=True):
    def p_sample_step(model, x_t, t, z, schedule):
        beta, alpha, ab = schedule.betas[t], schedule.alphas[t], schedule.alpha_bars[t]
        eps = model(x_t, np.full(x_t.shape[0], t))
        x = (x_t - eps * float(eps_scale(beta, ab))) / float(rescale(alpha, ab))
        if t > 0 or noise_at_zero:
            x = x + z * float(sigma(beta))
        return x.detach() if detach else x

    return p_sample_step


step_noise_at_the_end = _step_with(noise_at_zero=True)
step_sigma_is_beta = _step_with(sigma=lambda beta: beta)
step_without_square_root = _step_with(eps_scale=lambda beta, ab: beta / (1 - ab))
step_rescaled_by_alpha_bar = _step_with(rescale=lambda alpha, ab: np.sqrt(ab))
step_not_detached = _step_with(detach=False)

WRONG = {
    "discriminator_loss": [d_loss_through_sigmoid, d_loss_labels_swapped, d_loss_one_mean_over_both, d_loss_summed,
                           d_loss_in_numpy],
    "generator_loss": [g_loss_always_saturating, g_loss_saturating_sign, g_loss_through_sigmoid,
                       g_loss_labels_of_the_discriminator],
    "gan_step": [step_generator_first, step_moves_g_with_the_discriminators_loss,
                 step_moves_d_with_the_generators_loss, step_with_the_stale_discriminator, step_real_and_fake_swapped,
                 step_without_detach, step_returns_tensors],
    "noise_schedule": [schedule_cumsum, schedule_exclusive_product, schedule_product_of_betas,
                       schedule_without_the_end, schedule_float32],
    "diffusion_loss": [loss_without_square_roots, loss_with_alpha_t, loss_predicting_x0, loss_summed,
                       loss_mean_over_samples_only],
    "p_sample_step": [step_noise_at_the_end, step_sigma_is_beta, step_without_square_root, step_rescaled_by_alpha_bar,
                      step_not_detached],
}
for _name, _fns in WRONG.items():
    for _fn in _fns:  # the closures' names say which mistake they plant
        if _fn.__name__ in ("diffusion_loss", "p_sample_step"):
            _fn.__name__ = next(k for k, v in globals().items() if v is _fn)
MESSAGES = {  # the mistakes whose message must say what went wrong, not only that the numbers differ
    "d_loss_through_sigmoid": "overflow", "g_loss_through_sigmoid": "overflow", "d_loss_in_numpy": "no gradient",
    "step_generator_first": "order", "step_moves_g_with_the_discriminators_loss": "order",
    "step_moves_d_with_the_generators_loss": "order", "step_returns_tensors": "plain floats",
    "step_without_detach": "detach",
    "schedule_float32": "float64", "step_not_detached": "detach",
}


class TestGenerativeChapter(ChapterContract):
    chapter, textbook, wrong, messages = "generative", "11_generative", WRONG, MESSAGES

    def test_the_chapter_has_its_six_exercises(self):
        assert len(IDS) == 6


def test_a_wrong_loss_fails_only_its_own_check(capsys):
    """One bug, one failure: gan_step's check runs the reference losses even while a wrong one is installed."""
    course.exercise("generative.discriminator_loss")(d_loss_labels_swapped)
    course.exercise("generative.gan_step")(ref("generative.gan_step"))
    course.check("generative.gan_step")
    assert "✓ generative.gan_step" in capsys.readouterr().out
    with pytest.raises(CheckFailed):
        course.check("generative.discriminator_loss")


def test_an_installed_loss_is_what_the_library_trains_with():
    course.exercise("generative.generator_loss")(g_loss_labels_of_the_discriminator)
    fake = ndl.Tensor(np.array([[2.0]]), dtype="float64")
    assert np.isclose(float(gen.generator_loss(fake).numpy()), np.logaddexp(0, 2.0))
    course.reset()
    assert np.isclose(float(gen.generator_loss(fake).numpy()), np.logaddexp(0, -2.0))
