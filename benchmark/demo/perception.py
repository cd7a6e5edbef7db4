"""Demo v2's generative model of what a clip expresses and what each rater hears.

A clip expresses an **emotion mixture** ``m`` (K shares summing to 1) and the
audio carries it: the clip's prosody is the speaker's neutral voice shifted by
``sum_k m_k * profile_k`` (neutral's profile is zero, so a clip that is 60 %
neutral is a weak expression of the rest).  Mixtures of the clips of one
intended emotion and intensity level are drawn from a Dirichlet distribution
with mean ``mu`` and concentration ``kappa``: a small ``kappa`` gives
near-pure clips (each clip clearly one emotion, the group mixing clips of
different emotions), a large one gives every clip the same blend.  ``kappa``
is the **audible-ambiguity** knob.

Each rater ``r`` perceives a clip through their own

* **sensitivities** ``s_r`` (a mean-one log-normal multiplier per class: a
  rater sensitive to anger hears more anger *in clips that carry anger*, so
  rater and acoustics interact; a fixed class-prior shift cannot do that),
* **confusions** ``A_r`` (row j: what they answer when they hear pure emotion
  j; each row is Dirichlet with mean ``A_bar``), and
* **attentiveness** ``a_r`` (share of answers that follow perception; the rest
  is uniform),

so that ``p_r(m) = a_r * normalise(m * s_r) @ A_r + (1 - a_r) / K`` is the
distribution of their single-choice answer.  The spread of ``s_r``, ``A_r``
and ``a_r`` is the **rater-heterogeneity** knob (:data:`HETEROGENEITY`); every
level keeps the same means, so the population's confusions stay put.

The means ``mu`` are calibrated (:func:`calibrate_means`) so that the
population's expected answers per intended emotion and level reproduce the
CREMA-D voice-only confusion rows; ``kappa`` was chosen so that Krippendorff's
alpha of the generated votes matches CREMA-D voice's (0.281).  See
docs/methods.md#demo-v2.

Sampling uses only ``Generator.random()`` (uniform doubles, a stream numpy
keeps stable) turned into Dirichlet and normal draws by inverse CDFs, so the
labels -- and the task fingerprint -- are the same on every platform.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaincinv, ndtri

#: Rater-heterogeneity levels: (sensitivity log-sd, confusion-row concentration
#: (inf = everyone has A_bar), half-width of the attentiveness spread).
HETEROGENEITY: dict[str, tuple[float, float, float]] = {
    "none": (0.0, float("inf"), 0.0),
    "moderate": (0.5, 30.0, 0.03),
    "high": (1.0, 4.0, 0.03),
}
DEFAULT_HETEROGENEITY = "moderate"
#: Mean attentiveness and the uniform share of the mean confusion matrix.
ATTENTIVENESS = 0.97
CONFUSION_FLOOR = 0.05
#: Dirichlet concentration of the clip mixtures (the audible-ambiguity knob),
#: chosen so that alpha of the demo's votes is CREMA-D voice's 0.281.
DEFAULT_KAPPA = 3.3
_TINY = 1e-12
#: Seed of the uniforms the calibration averages over (fixed: the calibration is a constant).
CALIBRATION_SEED = 5


def mean_confusion(k: int) -> np.ndarray:
    """``A_bar``: mostly the heard emotion, with a small uniform share."""
    return (1.0 - CONFUSION_FLOOR) * np.eye(k) + CONFUSION_FLOOR / k


def dirichlet(alpha: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Dirichlet draws from uniforms by the gamma inverse CDF (rows of ``alpha`` and ``u``)."""
    alpha = np.broadcast_to(alpha, u.shape)
    g = gammaincinv(alpha, np.clip(u, _TINY, 1.0 - _TINY))
    total = g.sum(axis=-1, keepdims=True)
    # All shares underflowing (tiny shapes) leaves the clip with its largest-u class.
    pure = np.zeros_like(g)
    np.put_along_axis(pure, np.argmax(u ** (1.0 / alpha), axis=-1)[..., None], 1.0, axis=-1)
    return np.where(total > 0, g / np.where(total > 0, total, 1.0), pure)


def stratified(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """[n, k] uniforms, Latin-hypercube stratified over the n rows of each column.

    Stratifying the clips of one group keeps its realised mixtures close to
    the calibrated mean, so a group of 10 clips still shows the human rows.
    """
    order = np.argsort(rng.random((k, n)), axis=1).T
    return (order + rng.random((n, k))) / n


@dataclass(frozen=True)
class RaterPool:
    ids: tuple[str, ...]
    sensitivity: np.ndarray  # [R, K] multipliers (mean one)
    confusion: np.ndarray  # [R, K, K] row-stochastic
    attentiveness: np.ndarray  # [R]

    def answer_probs(self, m: np.ndarray) -> np.ndarray:
        """[R, K] answer distribution of every rater for mixture ``m`` [K]."""
        k = len(m)
        heard = m[None, :] * self.sensitivity
        heard /= heard.sum(axis=1, keepdims=True)
        p = np.einsum("rj,rjk->rk", heard, self.confusion)
        a = self.attentiveness[:, None]
        return a * p + (1.0 - a) / k


def make_pool(rng: np.random.Generator, k: int, n: int, heterogeneity: str) -> RaterPool:
    """A pool of ``n`` raters at one heterogeneity level (uses the same uniforms at every level)."""
    sd, tau, spread = HETEROGENEITY[heterogeneity]
    z = ndtri(np.clip(rng.random((n, k)), _TINY, 1 - _TINY))
    u_conf = rng.random((n, k, k))
    u_att = rng.random(n)
    sens = np.exp(sd * z - 0.5 * sd * sd)
    a_bar = mean_confusion(k)
    if np.isinf(tau):
        conf = np.broadcast_to(a_bar, (n, k, k)).copy()
    else:
        conf = dirichlet(tau * a_bar[None, :, :], u_conf)
    att = ATTENTIVENESS + spread * (2.0 * u_att - 1.0)
    return RaterPool(tuple(f"r{i + 1:02d}" for i in range(n)), sens, conf, att)


def expected_answers(pool: RaterPool, mixtures: np.ndarray) -> np.ndarray:
    """Mean answer distribution over the pool's raters and the given mixtures [N, K]."""
    heard = mixtures[:, None, :] * pool.sensitivity[None]
    heard /= heard.sum(axis=2, keepdims=True)
    p = np.einsum("mrj,rjk->mrk", heard, pool.confusion)
    a = pool.attentiveness[None, :, None]
    return (a * p + (1.0 - a) / mixtures.shape[1]).mean(axis=(0, 1))


def calibrate_means(target: np.ndarray, pool: RaterPool, kappa: float, u: np.ndarray,
                    iterations: int = 30) -> np.ndarray:
    """Mixture mean ``mu`` whose clips make the pool answer like ``target`` on average.

    Multiplicative fixed-point iteration ``mu <- mu * target / expected(mu)``
    on a fixed set of uniforms ``u`` [M, K] (common random numbers, so the
    map is smooth).  Exact where the target is reachable; a class whose
    target share is below the pool's uniform floor stays at its floor.
    """
    mu = target.copy()
    for _ in range(iterations):
        got = expected_answers(pool, dirichlet(np.maximum(kappa * mu, 1e-4), u))
        mu = mu * target / np.maximum(got, _TINY)
        mu = np.maximum(mu, 1e-6)
        mu /= mu.sum()
    return mu


def sample_vote(p: np.ndarray, u: float) -> int:
    c = np.cumsum(p)
    return int(min(np.searchsorted(c, u * c[-1], side="right"), len(p) - 1))
