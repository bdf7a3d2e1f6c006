"""The whole captioner: every parameter's gradient against central differences, and its parts."""
import numpy as np
import pytest

from rawcap.gradcheck import TOLERANCE, numerical_gradient, relative_error
from rawcap.data.vocab import END_ID, PAD_ID, UNK_ID
from rawcap.encoder import encode, running_statistics
from rawcap.model import Config, init_params, is_statistic, loss_and_grads, trainable, word_shares

TINY = dict(vocab_size=7, image_size=8, channels=(3, 4), embed_size=5, hidden_size=6,
            attention_size=4, dropout=0.3, embed_dropout=0.2, lambda_alpha=0.7, weight_decay=0.01,
            bag_of_words=0.5, label_smoothing=0.2)


def tiny_batch(rng):
    """2 images, 3 captions (the second image has two), T = 4 with masked tokens."""
    images = rng.random((2, 3, 8, 8))
    inputs, targets = rng.integers(0, 7, (3, 4)), rng.integers(0, 7, (3, 4))
    mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1], [1, 0, 0, 0]], bool)
    return images, inputs, targets, mask, np.array([0, 1, 1])


@pytest.mark.parametrize("seed, f_beta, batchnorm, train, cell, residual, deep", [
    (0, True, False, True, "lstm", False, False), (2, False, False, True, "lstm", False, False),
    (1, True, True, True, "lstm", False, False),   # batchnorm with the batch's statistics
    (3, True, True, False, "lstm", False, False),  # and with the running ones
    (4, True, True, True, "lstm", True, False),    # residual units, both modes
    (5, True, True, False, "lstm", True, False),
    (8, True, True, True, "lstm", "after pool", False),    # the units after the pooling
    (9, False, True, False, "lstm", "after pool", False),
    (10, True, True, True, "lstm", "2 after pool", False),   # two units in a row, both modes
    (11, True, True, False, "lstm", "2 after pool", False),
    (1, True, False, True, "rnn", False, False), (3, False, False, True, "rnn", False, False),
    (6, True, False, True, "lstm", False, True),   # the deep output layer
    (7, False, True, True, "rnn", False, True),
])
def test_every_parameter_gradient_matches_central_differences(seed, f_beta, batchnorm, train, cell,
                                                              residual, deep):
    rng = np.random.default_rng(seed)
    config = Config(**TINY, f_beta=f_beta, batchnorm=batchnorm, cell=cell, residual=bool(residual),
                    residual_after_pool=str(residual).endswith("after pool"),
                    residual_units=2 if residual == "2 after pool" else 1, deep_output=deep)
    assert_gradients_match(config, rng, train)


@pytest.mark.parametrize("seed, batchnorm, train", [(12, False, True), (13, True, True),
                                                    (14, True, False)])
def test_gradients_match_without_the_final_pool(seed, batchnorm, train):
    """The last block's map goes to the decoder unpooled (and through its residual unit)."""
    config = Config(**TINY, batchnorm=batchnorm, residual=batchnorm, residual_after_pool=batchnorm,
                    final_pool=False)
    assert_gradients_match(config, np.random.default_rng(seed), train)


def assert_gradients_match(config, rng, train, soft_targets=None):
    """Every trainable parameter's gradient from loss_and_grads against central differences,
    at parameters moved off the init, on tiny_batch, with one fixed dropout mask
    (and soft_targets, a teacher's, if given)."""
    params = init_params(config, rng, np.float64)
    for name in params:                      # move off the zero biases and the init's symmetry
        params[name] += 0.1 * rng.standard_normal(params[name].shape)
    batch = tiny_batch(rng)

    def loss():   # the same dropout mask on every call
        return np.asarray(loss_and_grads(params, config, *batch, np.random.default_rng(5),
                                         train=train, soft_targets=soft_targets)[0])

    _, _, grads = loss_and_grads(params, config, *batch, np.random.default_rng(5), train=train,
                                 soft_targets=soft_targets)
    assert grads.keys() == trainable(params).keys()
    assert any(is_statistic(name) for name in params) == config.batchnorm
    for name, p in trainable(params).items():
        error = relative_error(grads[name], numerical_gradient(loss, p, np.asarray(1.0)))
        assert error < TOLERANCE, f"{name}: relative error {error:.1e}"


def teacher_targets(rng, mask, k=3, V=7):
    """A teacher's soft targets for tiny_batch: k distinct words a step, probabilities summing to
    1 where mask, 0 where not."""
    indices = np.array([[rng.permutation(V)[:k] for _ in row] for row in mask])
    probs = rng.dirichlet(np.ones(k), mask.shape) * mask[:, :, None]
    return indices, probs


def test_gradients_match_with_a_teachers_soft_targets():
    """The teacher's term (word-level distillation, rawcap.teacher) adds to dlogits."""
    rng = np.random.default_rng(15)
    soft_targets = teacher_targets(rng, tiny_batch(np.random.default_rng(15))[3])
    assert_gradients_match(Config(**TINY, teacher_weight=0.8), np.random.default_rng(15), True,
                           soft_targets)


def test_teacher_term_is_the_cross_entropy_when_the_teacher_is_sure_of_the_target():
    """q one-hot on each target: the teacher's term is teacher_weight times the cross-entropy,
    and its gradient the same multiple of the cross-entropy's; without soft targets no term."""
    rng = np.random.default_rng(4)
    config = Config(**{**TINY, "lambda_alpha": 0.0, "weight_decay": 0.0, "bag_of_words": 0.0,
                       "label_smoothing": 0.0, "dropout": 0.0, "embed_dropout": 0.0})
    params = init_params(config, rng, np.float64)
    images, inputs, targets, mask, owner = tiny_batch(rng)
    sure = (targets[:, :, None], mask[:, :, None].astype(np.float64))
    taught = Config(**{**config.to_dict(), "teacher_weight": 0.5})
    plain = loss_and_grads(params, config, images, inputs, targets, mask, owner)
    loss, parts, grads = loss_and_grads(params, taught, images, inputs, targets, mask, owner,
                                        soft_targets=sure)
    assert parts["teacher"] == pytest.approx(0.5 * parts["ce"], rel=1e-12)
    assert loss == pytest.approx(1.5 * plain[0], rel=1e-12)
    np.testing.assert_allclose(grads["out_w"], 1.5 * plain[2]["out_w"], rtol=1e-10)
    assert loss_and_grads(params, taught, images, inputs, targets, mask, owner)[1]["teacher"] == 0


def test_loss_parts_add_up_and_blind_model_ignores_the_image():
    rng = np.random.default_rng(0)
    config = Config(**TINY)
    params = init_params(config, rng, np.float64)
    images, inputs, targets, mask, owner = tiny_batch(rng)
    loss, parts, _ = loss_and_grads(params, config, images, inputs, targets, mask, owner)
    assert loss == pytest.approx(sum(parts.values()))
    assert parts["decay"] > 0 and parts["attention"] > 0 and parts["ce"] > 0 and parts["words"] > 0
    assert parts["smoothing"] != 0
    blind = Config(**{**TINY, "weight_decay": 0.0}, blind=True)
    a = loss_and_grads(params, blind, images, inputs, targets, mask, owner)
    b = loss_and_grads(params, blind, rng.random(images.shape), inputs, targets, mask, owner)
    assert a[0] == b[0]
    assert not np.any(a[2]["conv0_w"])      # no gradient reaches the encoder (no decay here)


def test_float32_loss_agrees_with_float64():
    rng = np.random.default_rng(3)
    config = Config(**TINY)
    params = init_params(config, rng, np.float64)
    batch = tiny_batch(rng)
    loss64, _, g64 = loss_and_grads(params, config, *batch)
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    loss32, _, g32 = loss_and_grads(p32, config, batch[0].astype(np.float32), *batch[1:])
    assert loss32 == pytest.approx(loss64, rel=1e-5)
    for name in params:
        assert g32[name].dtype == np.float32
        np.testing.assert_allclose(g32[name], g64[name], rtol=0,
                                   atol=1e-4 * np.abs(g64[name]).max() + 1e-7)


def test_image_size_must_divide_by_the_pooling():
    with pytest.raises(ValueError, match="image_size 30"):
        init_params(Config(vocab_size=5, image_size=30, channels=(4, 4)), np.random.default_rng(0))


def test_batchnorm_params_statistics_and_modes():
    """With batchnorm each block has gamma/beta instead of the conv bias, and running statistics
    that a training step updates (handed back, params untouched) and eval mode uses."""
    rng = np.random.default_rng(4)
    config = Config(**TINY, batchnorm=True)
    params = init_params(config, rng, np.float64)
    assert "conv0_b" not in params and {"bn0_w", "bn0_b", "bn1_running_mean", "bn1_running_var"} <= set(params)
    np.testing.assert_array_equal(params["bn0_running_var"], 1)
    batch = tiny_batch(rng)
    statistics = {}
    loss_and_grads(params, config, *batch, statistics=statistics)
    assert sorted(statistics) == ["bn0_running_mean", "bn0_running_var", "bn1_running_mean",
                                  "bn1_running_var"]
    np.testing.assert_array_equal(params["bn0_running_mean"], 0)      # not written in place
    assert np.abs(statistics["bn0_running_mean"]).max() > 0

    # Eval mode: an image's features are the same alone or in a batch; train mode: they are not.
    images = batch[0]
    feats, cache = encode(params, config, images)
    alone, _ = encode(params, config, images[:1])
    np.testing.assert_allclose(alone[0], feats[0], rtol=1e-12)
    assert running_statistics(cache).keys() == statistics.keys()
    np.testing.assert_array_equal(running_statistics(cache)["bn1_running_var"], params["bn1_running_var"])
    train_feats, _ = encode(params, config, images, train=True)
    assert not np.allclose(train_feats, feats)
    # Weight decay leaves the running statistics alone.
    decayed = Config(**{**TINY, "weight_decay": 1.0}, batchnorm=True)
    grads = loss_and_grads(params, decayed, *batch)[2]
    assert not any(is_statistic(name) for name in grads)


@pytest.mark.parametrize("after_pool, units", [(False, 1), (True, 1), (True, 2)])
def test_residual_units_start_as_the_identity_and_keep_their_own_statistics(after_pool, units):
    """Each block gets res{k}_w [C, C, 3, 3] (and res{k}_1_w ... for more units) and a batchnorm
    whose scale starts at 0: at init the residual encoder computes exactly the plain one's
    features (before or after the pooling); training moves their statistics."""
    rng = np.random.default_rng(6)
    plain = Config(**TINY, batchnorm=True)
    residual = Config(**TINY, batchnorm=True, residual=True, residual_after_pool=after_pool,
                      residual_units=units)
    params = init_params(residual, np.random.default_rng(0), np.float64)
    assert set(params) - set(init_params(plain, np.random.default_rng(0))) == {
        f"{unit}_{name}" for unit in ("res0", "res1", "res0_1", "res1_1")[:2 * units] for name in
        ("w", "bn_w", "bn_b", "bn_running_mean", "bn_running_var")}
    assert params[f"res1{'_1' if units == 2 else ''}_w"].shape == (4, 4, 3, 3)
    images = tiny_batch(rng)[0]
    for train in (False, True):
        np.testing.assert_array_equal(encode(params, residual, images, train)[0],
                                      encode(params, plain, images, train)[0])
    statistics = {}
    loss_and_grads(params, residual, *tiny_batch(rng), statistics=statistics)
    assert {name for name in params if is_statistic(name)} == set(statistics)
    assert all(np.abs(statistics[f"res{k}_bn_running_mean"]).max() > 0 for k in (0, 1))
    with pytest.raises(ValueError, match="residual units need batchnorm"):
        Config(**TINY, residual=True)
    with pytest.raises(ValueError, match="it needs residual"):
        Config(**TINY, batchnorm=True, residual_after_pool=True)
    for units, residual in ((2, False), (0, True)):
        with pytest.raises(ValueError, match=f"residual_units must be 1, or more with residual, "
                                             f"got {units}"):
            Config(**TINY, batchnorm=True, residual=residual, residual_units=units)


def test_a_residual_unit_after_the_pooling_works_at_a_quarter_of_the_pixels():
    """Block k's unit sums over the pooled map, [B_img, C, S / 2^(k+1), ...], not the block's
    [.., S / 2^k, ..]; L is unchanged, and once the unit has moved off the identity the same
    weights give other features."""
    rng = np.random.default_rng(7)
    before = Config(**TINY, batchnorm=True, residual=True)
    after = Config(**TINY, batchnorm=True, residual=True, residual_after_pool=True)
    params = init_params(before, rng, np.float64)
    for name in params:
        if name.endswith("bn_w"):
            params[name] += 1.0
    images = tiny_batch(rng)[0]
    (feats_before, cache_before), (feats_after, cache_after) = (
        encode(params, config, images) for config in (before, after))
    for k, S in enumerate((8, 4)):        # the unit's ReLU keeps its input, x + z
        assert cache_before[0][k][3][0][3].shape == (2, before.channels[k], S, S)
        assert cache_after[0][k][3][0][3].shape == (2, after.channels[k], S // 2, S // 2)
    assert feats_before.shape == feats_after.shape == (2, after.locations, after.channels[-1])
    assert np.abs(feats_before - feats_after).max() > 1e-3


def test_without_the_final_pool_the_decoder_attends_over_four_times_the_locations():
    """The same weights: the unpooled last map, whose 2x2 maxima are the pooled features."""
    rng = np.random.default_rng(8)
    pooled, fine = Config(**TINY), Config(**TINY, final_pool=False)
    params, images = init_params(pooled, rng, np.float64), tiny_batch(rng)[0]
    (coarse_feats, _), (fine_feats, _) = (encode(params, c, images) for c in (pooled, fine))
    assert (pooled.locations, fine.locations) == (4, 16)        # 8 px, two blocks: 2x2 and 4x4
    assert fine_feats.shape == (2, 16, pooled.channels[-1])
    grid = fine_feats.transpose(0, 2, 1).reshape(2, -1, 2, 2, 2, 2)   # [N, D, i, 2, j, 2]
    np.testing.assert_array_equal(grid.max(axis=(3, 5)).reshape(2, -1, 4).transpose(0, 2, 1),
                                  coarse_feats)
    assert Config.from_dict({k: v for k, v in fine.to_dict().items()
                             if k != "final_pool"}).final_pool       # older checkpoints: pooled
    init_params(Config(**{**TINY, "image_size": 6}, final_pool=False), rng)   # 6 = 3 x 2^1
    with pytest.raises(ValueError, match="image_size 6 must be divisible by 2\\^2"):
        init_params(Config(**{**TINY, "image_size": 6}), rng)


def test_the_rnn_decoder_has_its_own_cell_parameters_and_no_c0():
    rnn = init_params(Config(**TINY, cell="rnn"), np.random.default_rng(0))
    lstm = init_params(Config(**TINY), np.random.default_rng(0))
    E, H, D = TINY["embed_size"], TINY["hidden_size"], TINY["channels"][-1]
    assert {k: v.shape for k, v in rnn.items() if k.startswith("rnn_")} == {
        "rnn_wx": (E + D, H), "rnn_wh": (H, H), "rnn_b": (H,)}
    assert set(lstm) - set(rnn) == {"lstm_wx", "lstm_wh", "lstm_b", "init_c_w", "init_c_b"}
    assert set(rnn) - set(lstm) == {"rnn_wx", "rnn_wh", "rnn_b"}


def test_config_cell_defaults_to_lstm_for_old_checkpoints_and_rejects_others():
    old = Config(**TINY).to_dict()
    del old["cell"]                          # a checkpoint written before the option existed
    assert Config.from_dict(old).cell == "lstm"
    assert Config.from_dict(Config(**TINY, cell="rnn").to_dict()).cell == "rnn"
    with pytest.raises(ValueError, match="cell must be one of lstm, rnn, got 'gru'"):
        Config(**TINY, cell="gru")


def test_bag_of_words_targets_and_parameters():
    """q counts each image's words over all its captions (no <end>, <unk> or masked tokens); the
    option adds bow_w, bow_b and leaves every other parameter as it was drawn without it."""
    targets = np.array([[4, 5, END_ID, PAD_ID], [4, UNK_ID, 6, END_ID], [6, 6, 4, 5]])
    mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]], bool)
    q = word_shares(targets, mask, np.array([1, 0, 1]), 3, 7, np.float32)
    assert q.dtype == np.float32
    np.testing.assert_allclose(q, [[0, 0, 0, 0, 1 / 2, 0, 1 / 2],
                                   [0, 0, 0, 0, 1 / 4, 1 / 4, 1 / 2],
                                   [0] * 7], rtol=1e-7)           # image 2 has no caption here
    config = Config(**TINY)
    without = init_params(Config(**{**TINY, "bag_of_words": 0.0}), np.random.default_rng(0))
    params = init_params(config, np.random.default_rng(0))
    assert params.keys() - without.keys() == {"bow_w", "bow_b"}
    assert params["bow_w"].shape == (4, 7)
    for name, p in without.items():
        np.testing.assert_array_equal(params[name], p)
