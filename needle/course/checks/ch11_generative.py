"""Chapter 11 (the course's GAN lecture, and denoising diffusion): the GAN's discriminator and generator losses, one
alternating training step, DDPM's noise schedule, its loss, and one step of its sampler.

Losses are compared in value with float64 numpy and in gradient with float64 closed forms (and checked for overflow
in float32 at large logits); the training step runs on watched optimizers, so the check sees which parameters each
update moved; diffusion checks use a small linear noise predictor whose numbers numpy computes too.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

import needle as ndl
from needle import nn, optim
from needle.nn.nn_time import sinusoidal_embedding

from ..cases import numerical_gradients, rng_for
from ..compare import expect, expect_close
from ..install import reference
from ..registry import exercise_check, set_hints

GEN = "needle.apps.generative"


def _sigmoid64(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(x / 2))


def _softplus64(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def _loss_and_grads(loss_fn: Callable, arrays: list[np.ndarray], dtype: str, what: str) -> tuple[float, list]:
    """loss_fn on Tensors made of `arrays`: its value and the gradient of each input (after backward)."""
    tensors = [ndl.Tensor(a, dtype=dtype) for a in arrays]
    out = loss_fn(*tensors)
    expect(isinstance(out, ndl.Tensor), f"{what} must return a needle Tensor (built from needle ops), got "
                                        f"{type(out).__name__}")
    expect(int(np.prod(out.shape)) == 1, f"{what} must return one number (a mean over the batch), got shape "
                                         f"{out.shape}")
    out.backward()
    grads = [t.grad for t in tensors]
    expect(all(g is not None for g in grads), f"{what}: after backward() an input has no gradient: build the loss "
                                              "from needle ops on the logits (not numpy), so that it is differentiable")
    return float(out.numpy().reshape(-1)[0]), [g.numpy() for g in grads]


def _logit_cases(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """(real, fake) logit batches of different sizes, from gentle to confident."""
    cases = []
    for n_real, n_fake, scale in ((4, 4, 1.0), (5, 3, 3.0), (2, 7, 8.0), (6, 1, 0.1)):
        cases.append((rng.normal(0, scale, (n_real, 1)), rng.normal(0, scale, (n_fake, 1))))
    return cases


_EXTREME = np.array([[-200.0], [-40.0], [0.0], [40.0], [200.0]])


def _expect_finite(value: float, grads: list, what: str) -> None:
    expect(np.isfinite(value) and all(np.isfinite(g).all() for g in grads),
           f"{what} at logits +-40 and +-200 in float32 gave loss {value} and gradients with inf or nan: exp of a "
           "large logit overflows and log of a sigmoid that rounds to 0 is -inf. Use softplus(x) = log(1 + exp(x)) "
           "computed as a logsumexp of (x, 0), which never exponentiates a large positive number")


@exercise_check("generative.discriminator_loss", target=f"{GEN}:discriminator_loss",
                hint="the discriminator's binary cross-entropy on logits")
def check_discriminator_loss(loss_fn: Callable) -> int:
    rng = rng_for("generative.discriminator_loss")
    cases = 0
    for real, fake in _logit_cases(rng):
        what = f"discriminator_loss(real logits {real.shape}, fake logits {fake.shape})"
        value, (g_real, g_fake) = _loss_and_grads(loss_fn, [real, fake], "float64", what)
        want = _softplus64(-real).mean() + _softplus64(fake).mean()
        expect_close(value, want, what=f"{what} (float64): mean(-log D(x)) + mean(-log(1 - D(G(z)))), D = sigmoid",
                     inputs={"real logits": real, "fake logits": fake}, rtol=1e-9, atol=1e-9)
        expect_close(g_real, (_sigmoid64(real) - 1) / len(real), what=f"{what}: gradient w.r.t. the real logits "
                     "(float64, closed form (sigmoid(r) - 1) / N_real)", rtol=1e-7, atol=1e-9)
        expect_close(g_fake, _sigmoid64(fake) / len(fake), what=f"{what}: gradient w.r.t. the fake logits "
                     "(float64, closed form sigmoid(f) / N_fake)", rtol=1e-7, atol=1e-9)
        cases += 3
    value, grads = _loss_and_grads(loss_fn, [_EXTREME, _EXTREME], "float32", "discriminator_loss")
    _expect_finite(value, grads, "discriminator_loss")
    expect_close(value, _softplus64(-_EXTREME).mean() + _softplus64(_EXTREME).mean(), rtol=1e-5, atol=1e-3,
                 what="discriminator_loss at logits -200 .. 200 (float32)")
    return cases + 1


@exercise_check("generative.generator_loss", target=f"{GEN}:generator_loss",
                hint="the generator's loss on the discriminator's logits for its fakes")
def check_generator_loss(loss_fn: Callable) -> int:
    rng = rng_for("generative.generator_loss")
    cases = 0
    for _, fake in _logit_cases(rng):
        for saturating in (False, True):
            what = f"generator_loss(fake logits {fake.shape}, saturating={saturating})"
            value, (grad,) = _loss_and_grads(lambda f: loss_fn(f, saturating=saturating), [fake], "float64", what)
            if saturating:
                want, want_grad, meaning = -_softplus64(fake).mean(), -_sigmoid64(fake) / len(fake), \
                    "mean(log(1 - D(G(z)))), the minimax game's own term"
            else:
                want, want_grad, meaning = _softplus64(-fake).mean(), (_sigmoid64(fake) - 1) / len(fake), \
                    "mean(-log D(G(z))), the non-saturating loss"
            expect_close(value, want, what=f"{what} (float64): {meaning}", inputs={"fake logits": fake},
                         rtol=1e-9, atol=1e-9)
            expect_close(grad, want_grad, what=f"{what}: gradient w.r.t. the logits (float64, closed form)",
                         rtol=1e-7, atol=1e-9)
            cases += 2
    for saturating in (False, True):
        value, grads = _loss_and_grads(lambda f: loss_fn(f, saturating=saturating), [_EXTREME], "float32",
                                       f"generator_loss(saturating={saturating})")
        _expect_finite(value, grads, f"generator_loss(saturating={saturating})")
        cases += 1
    return cases


# --- one GAN step ---------------------------------------------------------------------------------------------------

class _WatchedSGD(optim.SGD):
    """Plain SGD that records, at each step(), its own name, every watched parameter's value just before it, and
    which watched parameters hold a gradient then."""

    def __init__(self, name: str, params: list, log: list, watched: dict, lr: float):
        super().__init__(params, lr=lr)
        self.name, self.log, self.watched = name, log, watched

    def step(self) -> None:
        state = {k: [p.numpy().copy() for p in ps] for k, ps in self.watched.items()}
        state.update({f"{k} grads": [p.grad is not None for p in ps] for k, ps in self.watched.items()})
        self.log.append((self.name, state))
        super().step()


def _gan_pair(seed: int) -> tuple[nn.Module, nn.Module]:
    from needle.apps.generative import mlp

    np.random.seed(seed)
    return mlp([3, 5, 2], dtype="float64"), mlp([2, 6, 1], dtype="float64")


def _values(model: nn.Module) -> list[np.ndarray]:
    return [p.numpy().copy() for p in model.parameters()]


def _moved(before: list, after: list) -> list[bool]:
    return [not np.array_equal(a, b) for a, b in zip(before, after)]


def _run_step(step: Callable, seed: int, real: np.ndarray, z: np.ndarray) -> tuple[Any, dict, list]:
    G, D = _gan_pair(seed)
    log: list = []
    watched = {"G": G.parameters(), "D": D.parameters()}
    opt_g = _WatchedSGD("opt_g", G.parameters(), log, watched, lr=0.1)
    opt_d = _WatchedSGD("opt_d", D.parameters(), log, watched, lr=0.1)
    start = {"G": _values(G), "D": _values(D)}
    got = step(G, D, opt_g, opt_d, ndl.Tensor(real, dtype="float64", requires_grad=False),
               ndl.Tensor(z, dtype="float64", requires_grad=False))
    log.append(("end", {"G": _values(G), "D": _values(D)}))
    return got, start, log


@exercise_check("generative.gan_step", target=f"{GEN}:gan_step", hint="one alternating GAN update")
def check_gan_step(gan_step: Callable) -> int:
    rng = rng_for("generative.gan_step")
    cases = 0
    for seed, n in ((0, 8), (1, 5)):
        real, z = rng.normal(1.0, 0.5, (n, 2)), rng.standard_normal((n, 3))
        got, start, log = _run_step(gan_step, seed, real, z)
        want, _, ref_log = _run_step(reference(f"{GEN}:gan_step"), seed, real, z)
        what = f"gan_step on a batch of {n} (plain SGD, lr 0.1)"
        order = [name for name, _ in log[:-1]]
        expect(order == ["opt_d", "opt_g"], f"{what}: the optimizers' step() ran in the order {order}; the step "
               "updates the discriminator once (opt_d.step()), then the generator once (opt_g.step())")
        (_, at_d), (_, at_g), (_, end) = log
        (_, ref_at_g), (_, ref_end) = ref_log[1], ref_log[2]
        expect(not any(_moved(start["G"], at_g["G"])), f"{what}: the generator's parameters changed during the "
               "discriminator's update; only opt_d may move anything there")
        expect(not any(at_d["G grads"]), f"{what}: the discriminator's backward() reached the generator's parameters "
               "(they hold gradients at opt_d.step()): its fakes are fixed data, so detach() them first")
        expect(all(_moved(start["D"], at_g["D"])), f"{what}: opt_d.step() left some discriminator parameters "
               "unchanged: did the discriminator's loss get its gradient (backward) before the step?")
        for i, (a, b) in enumerate(zip(at_g["D"], ref_at_g["D"])):
            expect_close(a, b, what=f"{what}: discriminator parameter {i} after its update: its loss is "
                         "discriminator_loss(D(real), D(G(z))) with the fakes detached", rtol=1e-9, atol=1e-12)
        moved_d = _moved(at_g["D"], end["D"])
        expect(not any(moved_d), f"{what}: the discriminator's parameters changed during the generator's update; the "
               "generator's loss must move the generator only")
        expect(all(_moved(at_g["G"], end["G"])), f"{what}: opt_g.step() left some generator parameters unchanged")
        for i, (a, b) in enumerate(zip(end["G"], ref_end["G"])):
            expect_close(a, b, what=f"{what}: generator parameter {i} after its update: its loss is "
                         "generator_loss(D(G(z))) through the discriminator as just updated, with the same z",
                         rtol=1e-9, atol=1e-12)
        expect(isinstance(got, tuple) and len(got) == 2, f"{what} must return (discriminator loss, generator loss), "
                                                         f"got {got!r}")
        expect(all(isinstance(v, (float, np.floating)) for v in got), f"{what} returned "
               f"{[type(v).__name__ for v in got]}: return plain floats (float(loss.numpy())), not Tensors that keep "
               "the step's graph alive")
        expect_close(np.array(got), np.array(want), what=f"{what}: the returned losses (discriminator's before its "
                     "update, generator's through the updated discriminator)", rtol=1e-9, atol=1e-12)
        cases += 6
    return cases


# --- diffusion ------------------------------------------------------------------------------------------------------

def _closed_form64(betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Composing the steps x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps one by one: the mean's coefficient on
    x_0 and the variance of x_t given x_0, for each t."""
    coef, var = np.empty_like(betas), np.empty_like(betas)
    c, v = 1.0, 0.0
    for t, beta in enumerate(betas):
        c, v = c * np.sqrt(1 - beta), (1 - beta) * v + beta
        coef[t], var[t] = c, v
    return coef, var


@exercise_check("generative.noise_schedule", target=f"{GEN}:noise_schedule", hint="DDPM's linear noise schedule")
def check_noise_schedule(noise_schedule: Callable) -> int:
    cases = 0
    for T, b0, b1 in ((1000, 1e-4, 0.02), (100, 1e-4, 0.2), (10, 0.05, 0.3), (1, 0.1, 0.1), (50, 0.01, 0.01)):
        what = f"noise_schedule(T={T}, beta_start={b0}, beta_end={b1})"
        got = noise_schedule(T, b0, b1)
        for name in ("betas", "alphas", "alpha_bars"):
            arr = getattr(got, name, None)
            expect(isinstance(arr, np.ndarray) and arr.shape == (T,) and arr.dtype == np.float64,
                   f"{what}.{name} must be a float64 numpy array of shape ({T},), got "
                   f"{getattr(arr, 'dtype', type(arr).__name__)} {getattr(arr, 'shape', '')}")
        expect_close(got.betas, np.linspace(b0, b1, T), what=f"{what}.betas: T values evenly spaced from beta_start "
                     "to beta_end, both included", rtol=1e-12, atol=1e-15)
        expect_close(got.alphas, 1 - np.linspace(b0, b1, T), what=f"{what}.alphas", rtol=1e-12, atol=1e-15)
        coef, var = _closed_form64(np.linspace(b0, b1, T))
        expect_close(got.alpha_bars, coef ** 2, rtol=1e-10, atol=1e-13,
                     what=f"{what}.alpha_bars[t] against the square of x_0's coefficient after the t + 1 noising "
                          "steps 0..t applied one by one (q(x_t | x_0) has mean sqrt(alpha_bar_t) x_0)")
        expect_close(1 - got.alpha_bars, var, rtol=1e-10, atol=1e-13,
                     what=f"1 - {what}.alpha_bars[t] against the variance of x_t given x_0 after the steps 0..t "
                          "(q(x_t | x_0) has variance 1 - alpha_bar_t)")
        cases += 4
    return cases


class _LinearEps(nn.Module):
    """eps(x, t) = x W + emb(t) V in float64 (a noise predictor whose numbers numpy computes too); records its calls."""

    EMB = 4

    def __init__(self, rng: np.random.Generator, dim: int):
        super().__init__()
        self.W = nn.Parameter(rng.standard_normal((dim, dim)) * 0.5, dtype="float64")
        self.V = nn.Parameter(rng.standard_normal((self.EMB, dim)) * 0.5, dtype="float64")
        self.calls: list = []

    def forward(self, x: ndl.Tensor, t: Any) -> ndl.Tensor:
        self.calls.append((x.numpy().copy(), np.array(t)))
        emb = ndl.Tensor(sinusoidal_embedding(np.asarray(t).reshape(-1), self.EMB), dtype="float64",
                         requires_grad=False)
        return x @ self.W + emb @ self.V

    @classmethod
    def numpy_forward(cls, x: np.ndarray, t: np.ndarray, W: np.ndarray, V: np.ndarray) -> np.ndarray:
        return x @ W + sinusoidal_embedding(t, cls.EMB) @ V


def _schedule():
    return reference(f"{GEN}:noise_schedule")(50, 1e-3, 0.2)


@exercise_check("generative.diffusion_loss", target=f"{GEN}:diffusion_loss", hint="DDPM's noise-prediction loss")
def check_diffusion_loss(diffusion_loss: Callable) -> int:
    rng = rng_for("generative.diffusion_loss")
    schedule = _schedule()
    ab = schedule.alpha_bars
    cases = 0
    for n, dim in ((6, 2), (3, 3), (9, 1)):
        model = _LinearEps(rng, dim)
        x0, noise = rng.standard_normal((n, dim)), rng.standard_normal((n, dim))
        t = rng.integers(0, schedule.T, size=n)
        t[0], t[-1] = 0, schedule.T - 1
        what = f"diffusion_loss on a batch of {n} points in {dim}-D, steps t = {t.tolist()}"
        got = diffusion_loss(model, ndl.Tensor(x0, dtype="float64", requires_grad=False), t,
                             ndl.Tensor(noise, dtype="float64", requires_grad=False), schedule)
        expect(isinstance(got, ndl.Tensor) and int(np.prod(got.shape)) == 1,
               f"{what} must return a one-number needle Tensor, got {getattr(got, 'shape', type(got).__name__)}")
        expect(len(model.calls) == 1, f"{what}: call the model once, on (x_t, t); it was called {len(model.calls)} "
                                      "times")
        x_t = np.sqrt(ab[t])[:, None] * x0 + np.sqrt(1 - ab[t])[:, None] * noise
        seen_x, seen_t = model.calls[0]
        expect_close(seen_t.reshape(-1), t, what=f"{what}: the steps the model was given")
        expect_close(seen_x, x_t, what=f"{what}: the model's input x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - "
                     "alpha_bar_t) noise (the closed form of q(x_t | x_0))", inputs={"x_0": x0, "noise": noise},
                     rtol=1e-9, atol=1e-12)

        def loss64(W: np.ndarray, V: np.ndarray) -> np.ndarray:
            return np.mean((_LinearEps.numpy_forward(x_t, t, W, V) - noise) ** 2)

        W, V = model.W.numpy(), model.V.numpy()
        expect_close(got, np.array(loss64(W, V)).reshape(got.shape), what=f"{what}: the mean over every number of "
                     "(model(x_t, t) - noise)^2", rtol=1e-9, atol=1e-12)
        got.backward()
        expect(model.W.grad is not None, f"{what}: after backward() the model's parameters have no gradient: "
                                         "build the loss from the model's output with needle ops")
        want_w, want_v = numerical_gradients(loss64, [W, V], np.ones(()))
        expect_close(model.W.grad, want_w, what=f"{what}: gradient w.r.t. a model weight (float64, vs central "
                     "differences)", rtol=1e-6, atol=1e-8)
        expect_close(model.V.grad, want_v, what=f"{what}: gradient w.r.t. the time weights (float64, vs central "
                     "differences)", rtol=1e-6, atol=1e-8)
        cases += 4
    return cases


@exercise_check("generative.p_sample_step", target=f"{GEN}:p_sample_step", hint="one step of DDPM's sampler")
def check_p_sample_step(p_sample_step: Callable) -> int:
    rng = rng_for("generative.p_sample_step")
    schedule = _schedule()
    cases = 0
    for t in (schedule.T - 1, 31, 1, 0):
        n, dim = 5, 2
        model = _LinearEps(rng, dim)
        x_t, z = rng.standard_normal((n, dim)), rng.standard_normal((n, dim))
        what = f"p_sample_step at t = {t} of T = {schedule.T}"
        got = p_sample_step(model, ndl.Tensor(x_t, dtype="float64", requires_grad=False), t,
                            ndl.Tensor(z, dtype="float64", requires_grad=False), schedule)
        expect(isinstance(got, ndl.Tensor), f"{what} must return a needle Tensor, got {type(got).__name__}")
        expect(got.op is None, f"{what} returned a node of the model's graph: return it .detach()ed, or a sampler "
                               "of T steps builds one graph through all of them")
        expect(len(model.calls) == 1, f"{what}: call the model once, eps = model(x_t, steps); it was called "
                                      f"{len(model.calls)} times")
        expect_close(np.asarray(model.calls[0][1]).reshape(-1), np.full(n, t),
                     what=f"{what}: the steps given to the model (one per sample, all t)")
        beta, alpha, ab = schedule.betas[t], schedule.alphas[t], schedule.alpha_bars[t]
        eps = _LinearEps.numpy_forward(x_t, np.full(n, t), model.W.numpy(), model.V.numpy())
        want = (x_t - beta / np.sqrt(1 - ab) * eps) / np.sqrt(alpha) + (np.sqrt(beta) * z if t > 0 else 0)
        rule = ("no noise is added at the last step, t = 0" if t == 0 else
                "(x_t - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t) + sqrt(beta_t) z")
        expect_close(got, want, what=f"{what}: {rule}", inputs={"x_t": x_t, "z": z}, rtol=1e-9, atol=1e-12)
        cases += 2
    return cases


set_hints({
    "generative.discriminator_loss": (
        "discriminator_loss(real_logits, fake_logits): binary cross-entropy of the discriminator's logits, the real "
        "batch labelled 1 and the fakes 0, each term averaged over its own batch",
        ["D(x) = sigmoid(logit) is the probability that x is real. The discriminator maximises log D(x) on real "
         "data and log(1 - D(G(z))) on fakes: as a loss, the negatives of both, each a mean over its batch.",
         "-log sigmoid(r) = log(1 + exp(-r)) and -log(1 - sigmoid(f)) = log(1 + exp(f)): both are softplus, "
         "log(1 + exp(x)). Loss = mean(softplus(-real)) + mean(softplus(fake)). exp of a large logit overflows in "
         "float32; log(1 + exp(x)) = log(exp(x) + exp(0)) is a logsumexp of the pair (x, 0), and chapter 03's "
         "logsumexp subtracts the maximum first, so it never overflows.",
         "Stack x with init.zeros of its shape along a new last axis (ops.stack([x, zeros], axis=len(x.shape))) and "
         "ops.logsumexp over that axis; a mean is x.sum() / (number of elements)."]),
    "generative.generator_loss": (
        "generator_loss(fake_logits, saturating=False): the generator's loss on the discriminator's logits for its "
        "fakes, non-saturating by default, the minimax game's own term when saturating=True",
        ["The minimax game has the generator minimise log(1 - D(G(z))); early on D rejects every fake, D(G(z)) is "
         "near 0, and that term is flat there. Goodfellow's fix: maximise log D(G(z)) instead (same fixed point, "
         "strong gradient while D wins).",
         "Non-saturating: mean(-log sigmoid(f)) = mean(softplus(-f)). Saturating: mean(log(1 - sigmoid(f))) = "
         "-mean(softplus(f)). Use the same overflow-safe softplus as the discriminator's loss.",
         "softplus(x) = ops.logsumexp(ops.stack([x, zeros], axis=len(x.shape)), axes=(len(x.shape),)); mean = "
         ".sum() / number of elements."]),
    "generative.gan_step": (
        "gan_step(generator, discriminator, opt_g, opt_d, real, z): one discriminator update, then one generator "
        "update; return the two losses as floats",
        ["Each network has its own optimizer and its own loss. The discriminator learns on the real batch and on "
         "G(z) as fixed data (its loss must not move the generator); then the generator learns through the "
         "discriminator as it is now, with the same z, and only opt_g steps.",
         "fake = generator(z).detach(); loss_d = gen.discriminator_loss(D(real), D(fake)); reset, backward, "
         "opt_d.step(). Then loss_g = gen.generator_loss(D(generator(z))); reset, backward, opt_g.step().",
         "opt.reset_grad(), loss.backward(), opt.step(); return float(loss_d.numpy()), float(loss_g.numpy())."]),
    "generative.noise_schedule": (
        "noise_schedule(T, beta_start, beta_end): DDPM's linear schedule as Schedule(betas, alphas, alpha_bars), "
        "float64 numpy arrays of length T",
        ["Each noising step keeps sqrt(1 - beta_t) of the signal and adds noise of variance beta_t. Chaining steps "
         "0..t multiplies the signal's coefficients, so x_t given x_0 has a closed form with one number per t.",
         "betas: T values from beta_start to beta_end, both included; alphas = 1 - betas; alpha_bars[t] = alphas[0] "
         "* ... * alphas[t] (a running product).",
         "np.linspace(beta_start, beta_end, T), np.cumprod; return Schedule(betas, alphas, alpha_bars)."]),
    "generative.diffusion_loss": (
        "diffusion_loss(model, x0, t, noise, schedule): noise the clean batch to step t in one go and score the "
        "model's prediction of the noise",
        ["q(x_t | x_0) is a Gaussian you can sample directly: scale x_0 down and mix in the given noise. The model "
         "sees x_t and t and guesses which noise was mixed in; the loss is its mean squared error.",
         "x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise, with alpha_bar_t = schedule.alpha_bars[t] per "
         "sample; loss = mean over all numbers of (model(x_t, t) - noise)^2.",
         "The per-sample coefficients as a constant Tensor of shape (N, 1), .broadcast_to(x0.shape); call "
         "model(x_t, t) once; mean = .sum() / number of elements."]),
    "generative.p_sample_step": (
        "p_sample_step(model, x_t, t, z, schedule): one step of the ancestral sampler, x_{t-1} from x_t, detached",
        ["Remove the predicted noise's share from x_t, rescale, and add fresh noise of the step's size, except at "
         "the very last step, which returns the mean.",
         "eps = model(x_t, t for every sample); mean = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t); "
         "x_{t-1} = mean + sqrt(beta_t) z for t > 0, mean for t = 0.",
         "np.full(x_t.shape[0], t) gives the steps; multiply Tensors by float(...) scalars; return .detach()."]),
})
