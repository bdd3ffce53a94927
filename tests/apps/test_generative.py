"""needle.apps.generative and the module it brings (nn.Tanh; nn.SinusoidalEmbedding is in tests/nn): values against float64 numpy,
gradients against central differences, the sampler's arithmetic, and short training runs that must learn."""
import numpy as np
import pytest

import needle as ndl
from needle import nn
from needle.apps import generative as gen
from needle.course.cases import numerical_gradients


def _t(x, dtype="float64", requires_grad=True):
    return ndl.Tensor(np.asarray(x), dtype=dtype, requires_grad=requires_grad)


def test_tanh_module_matches_numpy_and_its_gradient():
    x = np.random.default_rng(0).normal(0, 2, (3, 4))
    t = _t(x)
    out = nn.Tanh()(t)
    np.testing.assert_allclose(out.numpy(), np.tanh(x), rtol=1e-12)
    out.sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), 1 - np.tanh(x) ** 2, rtol=1e-10)
    assert nn.Tanh().parameters() == []


def test_softplus_is_stable_and_exact():
    x = np.array([-1000.0, -30.0, -1.0, 0.0, 2.5, 30.0, 1000.0])
    for dtype in ("float32", "float64"):
        t = _t(x, dtype)
        out = gen.softplus(t)
        np.testing.assert_allclose(out.numpy(), np.logaddexp(0, x), rtol=1e-6, atol=1e-7)  # no log1p: 1 + 1e-13 is 1
        out.sum().backward()
        np.testing.assert_allclose(t.grad.numpy(), 0.5 * (1 + np.tanh(x / 2)), rtol=1e-6, atol=1e-7)


def test_gan_losses_against_numpy():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(0, 3, (5, 1)), rng.normal(0, 3, (3, 1))
    d = gen.discriminator_loss(_t(real), _t(fake))
    np.testing.assert_allclose(float(d.numpy()), np.logaddexp(0, -real).mean() + np.logaddexp(0, fake).mean())
    g = gen.generator_loss(_t(fake))
    np.testing.assert_allclose(float(g.numpy()), np.logaddexp(0, -fake).mean())
    g_sat = gen.generator_loss(_t(fake), saturating=True)
    np.testing.assert_allclose(float(g_sat.numpy()), -np.logaddexp(0, fake).mean())


def test_gan_step_moves_each_network_by_its_own_loss_only():
    np.random.seed(0)
    G, D = gen.mlp([2, 4, 2], dtype="float64"), gen.mlp([2, 4, 1], dtype="float64")
    rng = np.random.default_rng(0)
    real, z = _t(rng.normal(size=(6, 2)), requires_grad=False), _t(rng.normal(size=(6, 2)), requires_grad=False)
    g0, d0 = [p.numpy().copy() for p in G.parameters()], [p.numpy().copy() for p in D.parameters()]
    lr = 0.1
    # the expected update, written out: D's gradient with G fixed, then G's through the updated D
    Dc = gen.mlp([2, 4, 1], dtype="float64")
    for p, v in zip(Dc.parameters(), d0):
        p.data = _t(v, requires_grad=False)
    loss = gen.discriminator_loss(Dc(real), Dc(_t(G(z).numpy(), requires_grad=False)))
    loss.backward()
    d1 = [v - lr * p.grad.numpy() for p, v in zip(Dc.parameters(), d0)]
    opt_g, opt_d = ndl.optim.SGD(G.parameters(), lr=lr), ndl.optim.SGD(D.parameters(), lr=lr)
    d_loss, g_loss = gen.gan_step(G, D, opt_g, opt_d, real, z)
    assert isinstance(d_loss, float) and isinstance(g_loss, float)
    np.testing.assert_allclose(d_loss, float(loss.numpy()), rtol=1e-12)
    for got, want in zip(D.parameters(), d1):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-14)
    assert any(not np.array_equal(p.numpy(), v) for p, v in zip(G.parameters(), g0))


def test_noise_schedule_closed_form():
    s = gen.noise_schedule(200, 1e-4, 0.05)
    assert s.T == 200 and s.betas.dtype == np.float64
    coef, var = 1.0, 0.0
    for t in range(200):
        coef, var = coef * np.sqrt(1 - s.betas[t]), (1 - s.betas[t]) * var + s.betas[t]
        assert np.isclose(coef ** 2, s.alpha_bars[t], rtol=1e-10) and np.isclose(var, 1 - s.alpha_bars[t], rtol=1e-10)


@pytest.mark.parametrize("args", [(0, 1e-4, 0.02), (10, 0.0, 0.02), (10, 0.5, 0.1), (10, 0.1, 1.0)])
def test_noise_schedule_rejects_bad_arguments(args):
    with pytest.raises(ValueError, match="noise_schedule"):
        gen.noise_schedule(*args)


def test_q_sample_has_the_closed_form_moments():
    """Many samples of q(x_t | x_0) for one x_0: mean sqrt(alpha_bar) x_0, variance 1 - alpha_bar."""
    s = gen.noise_schedule(100)
    rng = np.random.default_rng(3)
    n, t = 20000, 60
    x0 = np.tile([[1.5, -2.0]], (n, 1))
    xt = gen.q_sample(_t(x0), np.full(n, t), _t(rng.standard_normal((n, 2))), s).numpy()
    np.testing.assert_allclose(xt.mean(axis=0), np.sqrt(s.alpha_bars[t]) * x0[0], atol=0.03)
    np.testing.assert_allclose(xt.var(axis=0), 1 - s.alpha_bars[t], rtol=0.05)


def test_diffusion_loss_value_and_gradient():
    s = gen.noise_schedule(30, 1e-3, 0.3)
    rng = np.random.default_rng(4)
    np.random.seed(4)
    model = gen.Denoiser(dim=2, hidden=6, time_dim=4, layers=2, dtype="float64")
    x0, noise = rng.standard_normal((5, 2)), rng.standard_normal((5, 2))
    t = rng.integers(0, 30, 5)
    loss = gen.diffusion_loss(model, _t(x0, requires_grad=False), t, _t(noise, requires_grad=False), s)
    ab = s.alpha_bars[t][:, None]
    x_t = np.sqrt(ab) * x0 + np.sqrt(1 - ab) * noise
    pred = model(_t(x_t, requires_grad=False), t).numpy()
    np.testing.assert_allclose(float(loss.numpy()), np.mean((pred - noise) ** 2), rtol=1e-12)
    loss.backward()
    W = model.body.modules[-1].weight

    def loss_of(w):
        W.data = _t(w, requires_grad=False)
        return np.mean((model(_t(x_t, requires_grad=False), t).numpy() - noise) ** 2)

    w0 = W.numpy().copy()
    grad = W.grad.numpy()
    (want,) = numerical_gradients(loss_of, [w0], np.ones(()))
    np.testing.assert_allclose(grad, want, rtol=1e-6, atol=1e-9)


def test_p_sample_step_follows_ddpm_and_adds_no_noise_at_the_end():
    s = gen.noise_schedule(20, 1e-3, 0.2)

    class Constant(nn.Module):
        def forward(self, x, t):
            return ndl.Tensor(np.full(x.shape, 0.5), dtype=x.dtype, requires_grad=False)

    x = np.array([[1.0, -1.0]])
    z = np.array([[0.3, 0.7]])
    for t in (7, 0):
        got = gen.p_sample_step(Constant(), _t(x), t, _t(z), s).numpy()
        want = (x - s.betas[t] / np.sqrt(1 - s.alpha_bars[t]) * 0.5) / np.sqrt(s.alphas[t])
        if t:
            want = want + np.sqrt(s.betas[t]) * z
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_sample_keeps_the_requested_steps():
    s = gen.noise_schedule(10, 1e-3, 0.2)
    np.random.seed(0)
    model = gen.Denoiser(hidden=8, time_dim=4, layers=2)
    out, kept = gen.sample(model, s, 16, 2, np.random.default_rng(0), keep=(10, 5, 0))
    assert out.shape == (16, 2) and sorted(kept) == [0, 5, 10]
    np.testing.assert_array_equal(kept[0], out)
    assert abs(kept[10].std() - 1) < 0.5  # x_T is standard normal noise


def test_ring_data_and_mode_counting():
    rng = np.random.default_rng(0)
    pts = gen.ring_of_gaussians(4000, rng)
    assert pts.shape == (4000, 2) and pts.dtype == np.float32
    assert gen.modes_covered(pts) == (8, 1.0)
    one_mode = pts[np.linalg.norm(pts - gen.ring_centres()[0], axis=1) < 0.3]
    assert gen.modes_covered(one_mode)[0] == 1
    assert gen.modes_covered(np.zeros((100, 2)))[1] == 0.0


def test_two_moons_and_mnist_images():
    moons = gen.two_moons(5000, np.random.default_rng(0))
    assert moons.shape == (5000, 2) and np.all(np.abs(moons.mean(axis=0)) < 0.2)
    images = gen.mnist_images()
    assert images.shape == (10000, 784) and images.min() == -1.0 and images.max() == 1.0


def test_gan_learns_the_ring():
    np.random.seed(0)
    rng = np.random.default_rng(0)
    G, D = gen.mlp([2, 64, 64, 2]), gen.mlp([2, 64, 64, 1])
    z = rng.standard_normal((2000, 2))
    before = gen.modes_covered(gen.generate(G, z))
    history = gen.train_gan(G, D, lambda n: gen.ring_of_gaussians(n, rng), steps=600, batch_size=128,
                            latent_dim=2, rng=rng)
    assert len(history) == 600 and set(history[0]) == {"step", "d_loss", "g_loss"}
    samples = gen.generate(G, z)
    covered, share = gen.modes_covered(samples)
    on_ring = float(np.mean(np.abs(np.linalg.norm(samples, axis=1) - 2.0) < 0.3))
    assert before[0] <= 1 and before[1] < 0.1, before  # an untrained generator: a blob near the centre
    # after 600 steps: half the samples on the ring, spread over more than one mode (all 8 take longer). How many
    # modes is chaotic: the last digits of the float32 kernels decide it (this seed found 6 modes before the
    # vectorised log/tanh changed rounding, 3 after), so the test asks for the ring itself and no collapse.
    assert on_ring > 0.4 and covered >= 2 and share > 0.15, (on_ring, covered, share)


def test_diffusion_learns_two_moons():
    np.random.seed(0)
    rng = np.random.default_rng(0)
    data = gen.two_moons(4000, rng)
    s = gen.noise_schedule(50, 1e-4, 0.4)
    model = gen.Denoiser(hidden=64)
    losses = gen.train_diffusion(model, data, s, steps=600, batch_size=128, rng=rng)
    assert np.mean(losses[-50:]) < 0.7 * np.mean(losses[:50])
    samples, _ = gen.sample(model, s, 1000, 2, rng)
    # most samples lie near the data (the noise they started from does not)
    dist = np.sqrt(((samples[:, None] - data[None, :2000]) ** 2).sum(-1)).min(axis=1)
    start = rng.standard_normal((1000, 2))
    dist0 = np.sqrt(((start[:, None] - data[None, :2000]) ** 2).sum(-1)).min(axis=1)
    assert np.median(dist) < 0.5 * np.median(dist0), (np.median(dist), np.median(dist0))


def test_command_line_runs(capsys):
    gen.main(["gan", "--steps", "20", "--every", "10", "--batch-size", "32"])
    out = capsys.readouterr().out
    assert "step 10:" in out and "modes covered" in out
    gen.main(["gan", "--data", "mnist", "--steps", "4", "--every", "2", "--batch-size", "8"])
    out = capsys.readouterr().out
    assert "step 4: discriminator loss" in out and "modes covered" not in out
    gen.main(["diffusion", "--steps", "20", "--every", "10", "--T", "10", "--batch-size", "32"])
    out = capsys.readouterr().out
    assert "step 20: loss" in out and "samples: mean" in out


def test_models_train_and_sample_on_the_device_they_are_given():
    """The DEVICE switch: data, noise, time embeddings and samples follow the models onto another device."""
    device = ndl.cpu_numpy()
    np.random.seed(0)
    rng = np.random.default_rng(0)
    G, D = gen.mlp([2, 8, 2], device=device), gen.mlp([2, 8, 1], device=device)
    gen.train_gan(G, D, lambda n: gen.ring_of_gaussians(n, rng), steps=3, batch_size=16, latent_dim=2, rng=rng,
                  device=device)
    assert all(p.device == device for p in G.parameters() + D.parameters())
    assert gen.generate(G, rng.standard_normal((4, 2)), device=device).shape == (4, 2)
    s = gen.noise_schedule(5, 1e-3, 0.2)
    model = gen.Denoiser(hidden=8, time_dim=4, layers=2, device=device)
    gen.train_diffusion(model, gen.two_moons(64, rng), s, steps=3, batch_size=16, rng=rng, device=device)
    out, _ = gen.sample(model, s, 8, 2, rng, device=device)
    assert out.shape == (8, 2) and np.isfinite(out).all()
