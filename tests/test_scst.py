"""Self-critical training: sampling, the policy-gradient loss and its gradient, the CIDEr-D
reward, one step through the whole model, and the teacher batch of sampled captions."""
import numpy as np
import pytest
from test_decode import caption_log_prob, run_words, tiny_model
from test_model import TINY as TINY_MODEL

from data_fixtures import captions, write_dataset

from rawcap.data.cache import open_cache, prepare
from rawcap.data.vocab import END_ID, PAD_ID, START_ID, Vocabulary
from rawcap.decode import greedy_decode, sample_decode
from rawcap.gradcheck import gradient_errors, numerical_gradient, policy_gradient_check, relative_error
from rawcap.layers import policy_gradient_backward, policy_gradient_forward
from rawcap.metrics import CiderD, cider_d
from rawcap.model import Config, backward, forward, init_params
from rawcap.scst import CiderReward, loss_and_grads, teacher_batch


# The policy-gradient layer ------------------------------------------------------------------

def test_policy_gradient_forward_is_the_advantage_weighted_log_probability():
    rng = np.random.default_rng(0)
    logits, tokens = rng.standard_normal((3, 4, 5)), rng.integers(0, 5, (3, 4))
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], bool)
    advantages = np.array([0.5, -2.0, 1.5])
    loss, _ = policy_gradient_forward(logits, tokens, mask, advantages)
    expected = 0.0
    for n in range(3):
        for t in range(4):
            if mask[n, t]:
                p = np.exp(logits[n, t]) / np.exp(logits[n, t]).sum()
                expected -= advantages[n] * np.log(p[tokens[n, t]]) / 3
    assert loss == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed, sizes", [(0, {}), (1, dict(N=1, T=1, V=3)), (2, dict(N=3, T=5, V=2))])
def test_policy_gradient_matches_central_differences(seed, sizes):
    rng = np.random.default_rng(seed)
    for name, _, error in gradient_errors(policy_gradient_check(rng, **sizes), rng):
        assert error < 1e-7, f"{name}: {error:.1e}"


def test_policy_gradient_is_stable_masked_and_zero_for_a_tied_sample():
    logits = np.array([[[1000.0, 0.0, -1000.0], [3.0, 2.0, 1.0]]])
    tokens, mask = np.array([[0, 2]]), np.array([[True, False]])
    loss, cache = policy_gradient_forward(logits, tokens, mask, np.array([2.0]))
    assert np.isfinite(loss) and loss == pytest.approx(0.0, abs=1e-12)    # p(token 0) = 1
    dlogits = policy_gradient_backward(1.0, cache)
    assert np.all(np.isfinite(dlogits)) and not np.any(dlogits[0, 1])     # masked step
    _, cache = policy_gradient_forward(logits, tokens, np.ones((1, 2)), np.array([0.0]))
    assert not np.any(policy_gradient_backward(1.0, cache))                    # advantage 0


def test_policy_gradient_float32_agrees_with_float64():
    rng = np.random.default_rng(3)
    args = dict(logits=3 * rng.standard_normal((4, 6, 50)), tokens=rng.integers(0, 50, (4, 6)),
                mask=rng.random((4, 6)) < 0.8, advantages=rng.standard_normal(4))
    loss64, cache64 = policy_gradient_forward(**args)
    loss32, cache32 = policy_gradient_forward(
        **{**args, "logits": args["logits"].astype(np.float32),
           "advantages": args["advantages"].astype(np.float32)})
    assert loss32.dtype == np.float32 and loss32 == pytest.approx(loss64, rel=1e-5)
    d64, d32 = policy_gradient_backward(1.0, cache64), policy_gradient_backward(1.0, cache32)
    assert d32.dtype == np.float32 and np.abs(d32 - d64).max() <= 1e-5 * np.abs(d64).max()


@pytest.mark.parametrize("change, message", [
    (dict(advantages=np.zeros(3)), "advantages has shape .3,., but its N axis should be 2"),
    (dict(advantages=np.zeros((2, 1))), "advantages must have 1 dims"),
    (dict(advantages=np.zeros(2, np.float32)), "advantages is float32 but logits is float64"),
    (dict(tokens=np.full((2, 3), 7)), "tokens must lie in .0, 4."),
    (dict(tokens=np.zeros((2, 3))), "tokens must hold integers"),
])
def test_policy_gradient_bad_input_names_the_argument(change, message):
    args = dict(logits=np.zeros((2, 3, 4)), tokens=np.zeros((2, 3), int), mask=np.ones((2, 3)),
                advantages=np.zeros(2))
    with pytest.raises(ValueError, match=f"policy_gradient_forward: {message}"):
        policy_gradient_forward(**{**args, **change})


# Sampling -----------------------------------------------------------------------------------

def test_sampling_is_seeded_and_scores_are_the_captions_log_probabilities():
    config, params, images = tiny_model(0)
    a = sample_decode(params, config, images, np.random.default_rng(5), max_length=6)
    b = sample_decode(params, config, images, np.random.default_rng(5), max_length=6)
    c = sample_decode(params, config, images, np.random.default_rng(6), max_length=6)
    assert a.tokens == b.tokens and a.tokens != c.tokens
    for i, tokens in enumerate(a.tokens):
        assert PAD_ID not in tokens and START_ID not in tokens and END_ID not in tokens
        assert a.scores[i] == pytest.approx(caption_log_prob(params, config, images[i], tokens, 6),
                                            rel=1e-10)


def test_sampled_words_follow_the_softmax():
    """4000 draws of the first word of one image: each word's frequency within 4.5 standard
    errors of its probability (a wrong sampler, e.g. off by one word, is off by far more)."""
    config, params, images = tiny_model(1)
    n = 4000
    first = [tokens[0] if tokens else END_ID for tokens in
             sample_decode(params, config, np.repeat(images[:1], n, axis=0),
                           np.random.default_rng(0), max_length=1).tokens]
    p = np.exp(run_words(params, config, images[0], [])[0])
    counts = np.bincount(first, minlength=len(p))
    assert counts[PAD_ID] == counts[START_ID] == 0
    sigma = np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(counts / n - p) <= 4.5 * sigma + 1e-12), (counts / n, p)


def test_teacher_batch_ends_captions_that_ended_and_not_those_cut():
    inputs, targets, mask = teacher_batch([[4, 5], [], [6, 7, 8]], max_length=3)
    assert targets.tolist() == [[4, 5, END_ID], [END_ID, PAD_ID, PAD_ID], [6, 7, 8]]
    assert inputs.tolist() == [[START_ID, 4, 5], [START_ID, PAD_ID, PAD_ID], [START_ID, 6, 7]]
    assert mask.tolist() == [[True] * 3, [True, False, False], [True] * 3]


def test_the_models_policy_loss_is_minus_the_mean_log_probability_of_the_samples():
    """forward(advantages=1) on the teacher batch of samples = -mean of sample_decode's scores:
    the loss differentiates the very distribution the captions were drawn from."""
    config, params, images = tiny_model(2)
    config.lambda_alpha, config.weight_decay = 0.0, 0.0
    sampled = sample_decode(params, config, images, np.random.default_rng(1), max_length=5)
    batch = teacher_batch(sampled.tokens, 5)
    loss, parts, _ = forward(params, config, images, *batch, np.arange(len(images)), train=False,
                             advantages=np.ones(len(images)))
    assert set(parts) == {"policy", "smoothing", "teacher", "attention", "decay", "words"}
    assert loss == pytest.approx(-sampled.scores.mean(), rel=1e-10)


def test_the_models_policy_gradient_matches_central_differences():
    """On test_model's well-conditioned tiny model (decode's, with its saturated tanh units, has
    gradients too small against the loss for central differences, cross-entropy's alike)."""
    rng = np.random.default_rng(3)
    config = Config(**TINY_MODEL)
    params = init_params(config, rng, np.float64)
    for name in params:
        params[name] += 0.1 * rng.standard_normal(params[name].shape)
    images = rng.random((4, 3, 8, 8))
    sampled = sample_decode(params, config, images, np.random.default_rng(2), max_length=4)
    batch = teacher_batch(sampled.tokens, 4)
    advantages = np.array([0.8, -0.4, 0.0, 1.1])

    def loss():
        return np.asarray(forward(params, config, images, *batch, np.arange(4), train=False,
                                  advantages=advantages)[0])

    grads = backward(forward(params, config, images, *batch, np.arange(4), train=False,
                             advantages=advantages)[2])
    assert grads.keys() == params.keys()
    for name in params:
        error = relative_error(grads[name], numerical_gradient(loss, params[name], np.asarray(1.0)))
        assert error < 1e-7, f"{name}: {error:.1e}"


def length_reward(rows, captions):
    """A stand-in for CiderReward: a caption's reward is its number of words."""
    return np.array([len(c) for c in captions], dtype=np.float64)


@pytest.mark.parametrize("baseline, samples", [("greedy", 1), ("greedy", 3), ("mean", 3)])
def test_a_step_samples_k_captions_per_image_and_compares_each_with_its_baseline(baseline, samples):
    """The step's loss is -(1/(B K)) sum_n a_n log p(sample_n), with the samples drawn as
    sample_decode draws them from each image repeated K times, and a_n = r_n - the greedy
    caption's reward, or - the mean of the image's other samples' (which sum to 0 per image)."""
    config, params, images = tiny_model(4)
    config.lambda_alpha, config.weight_decay = 0.0, 0.0
    B = len(images)
    owner = np.repeat(np.arange(B), samples)
    sampled = sample_decode(params, config, images[owner], np.random.default_rng(7), max_length=5)
    rewards = length_reward(None, sampled.tokens)
    if baseline == "greedy":
        baselines = length_reward(None, greedy_decode(params, config, images, 5).tokens)[owner]
    else:
        per_image = rewards.reshape(B, samples)
        baselines = ((per_image.sum(1, keepdims=True) - per_image) / (samples - 1)).ravel()
        assert np.allclose((rewards - baselines).reshape(B, samples).sum(1), 0)
    loss, parts, grads = loss_and_grads(params, config, images, np.arange(B), length_reward,
                                        np.random.default_rng(7), max_length=5, samples=samples,
                                        baseline=baseline)
    assert float(loss) == pytest.approx(-((rewards - baselines) * sampled.scores).mean(), rel=1e-10)
    assert parts["reward"] == pytest.approx(rewards.mean())
    assert parts["baseline"] == pytest.approx(baselines.mean())
    assert grads.keys() == {k for k in params if "running" not in k}


def test_a_step_refuses_a_mean_baseline_without_other_samples():
    config, params, images = tiny_model(4)
    with pytest.raises(ValueError, match="mean 2 or more"):
        loss_and_grads(params, config, images, np.arange(4), length_reward,
                       np.random.default_rng(0), samples=1, baseline="mean")


# The reward ----------------------------------------------------------------------------------

def test_per_caption_cider_d_averages_to_the_set_score():
    refs = [[["a", "dog", "runs"], ["a", "brown", "dog"]], [["a", "cat", "sits"]],
            [["two", "birds", "fly"], ["birds", "in", "the", "sky"]]]
    hyps = [["a", "dog"], ["a", "cat", "sits"], ["a", "bird"]]
    scorer = CiderD(refs)
    scores = [scorer.score(i, hyp) for i, hyp in enumerate(hyps)]
    assert np.mean(scores) == pytest.approx(cider_d(refs, hyps), rel=1e-12)
    assert scores[1] > scores[0] > scores[2] == 0.0
    with pytest.raises(ValueError, match="every image needs at least one reference"):
        CiderD([[["a"]], []])


def test_cider_reward_scores_against_the_train_references_of_each_image(tmp_path):
    write_dataset(tmp_path / "data")
    cache = prepare(tmp_path / "data", tmp_path / "cache.h5", size=8, min_count=1,
                    progress=False, log=lambda line: None)
    reward = CiderReward(cache)
    with open_cache(cache) as f:
        vocab = Vocabulary.from_json(f.attrs["vocab"])
        names = list(f["filenames"].asstr()[:])
    assert len(reward.scorer) == 8                           # the train images only
    rows = [names.index("img00.jpg"), names.index("img01.jpg")]
    own = [vocab.encode(captions("img00.jpg")[0].lower().rstrip(" .").split(), 20)[0][1:-1],
           vocab.encode(captions("img01.jpg")[0].lower().rstrip(" .").split(), 20)[0][1:-1]]
    swapped = own[::-1]
    mine, theirs = reward(rows, own), reward(rows, swapped)
    assert mine.dtype == np.float64 and np.all(mine > theirs)
    assert mine[0] == pytest.approx(reward.scorer.score(reward.index[rows[0]], vocab.decode(own[0])))
    with pytest.raises(ValueError, match="are not train images"):
        reward([names.index("img09.jpg")], [own[0]])
