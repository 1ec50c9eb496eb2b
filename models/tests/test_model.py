"""The properties the paper's design promises, checked on a small random model."""
import torch
import pytest

from flamingo.mask import media_index
from flamingo.model import Flamingo, FlamingoConfig

IMAGE = 4  # token id of <image> in these tests


def make(seed=0, **kw) -> Flamingo:
    torch.manual_seed(seed)
    cfg = FlamingoConfig(vocab_size=64, d_model=64, n_heads=4, n_layers=4, d_vision=32, n_latents=4,
                         vision_channels=(8, 16, 16, 32), **kw)
    return Flamingo(cfg).eval()


def randomize_bridge(model: Flamingo) -> None:
    """Trained-looking gates and weights, so the masks below are tested on a live bridge."""
    with torch.no_grad():
        for p in list(model.resampler.parameters()) + list(model.flamingo_lm.xattn.parameters()):
            p.normal_(0, 0.3)


def prompt(seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 64, (1, 24), generator=g)
    ids[0, [6, 13, 19]] = IMAGE  # text before the first image, then three images
    return ids


def test_media_index_counts_images():
    ids = torch.tensor([[9, 9, IMAGE, 9, IMAGE, IMAGE, 9]])
    assert media_index(ids, IMAGE).tolist() == [[-1, -1, 0, 0, 1, 2, 2]]


def test_zero_gates_leave_the_language_model_unchanged():
    model = make()
    with torch.no_grad():  # train the bridge weights to anything, but keep alpha = beta = 0
        for block in model.flamingo_lm.xattn:
            for name, p in block.named_parameters():
                if not name.endswith("_gate"):
                    p.normal_(0, 0.5)
    ids = prompt()
    plain, _ = model.flamingo_lm(ids, use_media=False)
    for seed in range(3):
        pixels = torch.randn(1, 3, 1, 3, 64, 64, generator=torch.Generator().manual_seed(seed)) * 5
        with torch.no_grad():
            logits = model(ids, media_index(ids, IMAGE), pixel_values=pixels)
        assert torch.equal(logits, plain), (logits - plain).abs().max()


def test_per_image_mask():
    model = make()
    randomize_bridge(model)
    ids = prompt()
    midx = media_index(ids, IMAGE)
    g = torch.Generator().manual_seed(1)
    pixels = torch.randn(1, 3, 1, 3, 64, 64, generator=g)
    with torch.no_grad():
        base = model(ids, midx, pixel_values=pixels)
        for k in range(3):
            changed = pixels.clone()
            changed[0, k] = torch.randn(1, 3, 64, 64, generator=g)
            out = model(ids, midx, pixel_values=changed)
            diff = (out - base).abs().amax(-1)[0]
            # Only image k's tokens see image k directly; later images' tokens still see it through
            # self-attention (the paper: earlier images are reachable through the LM's attention).
            first = (midx[0] == k).nonzero()[0].item()
            assert torch.all(diff[:first] == 0), f"tokens before image {k} changed"
            assert diff[first:].max() > 1e-6, f"image {k} had no effect"
            # and the text before the first image is untouched by any image
            assert torch.all(diff[: (midx[0] == 0).nonzero()[0].item()] == 0)


def test_cross_attention_sees_only_its_own_image():
    """With self-attention cut out (one token at a time, no past), a token after image k
    depends on image k alone."""
    model = make()
    randomize_bridge(model)
    block = model.flamingo_lm.xattn[0]
    y = torch.randn(1, 5, 64)
    media = torch.randn(1, 3, 4, 32)
    midx = torch.tensor([[-1, 0, 1, 2, 1]])
    with torch.no_grad():
        base = block.xattn(y, media, midx)
        assert torch.all(base[0, 0] == 0), "a token before any image must get exactly zero"
        for k in range(3):
            changed = media.clone()
            changed[0, k] += 1.0
            diff = (block.xattn(y, changed, midx) - base).abs().amax(-1)[0]
            for pos in range(5):
                if midx[0, pos] == k:
                    assert diff[pos] > 1e-5
                else:
                    assert diff[pos] == 0


@pytest.mark.parametrize("frames", [1, 2, 8])
def test_resampler_gives_a_fixed_number_of_latents(frames):
    model = make()
    feats = torch.randn(2, frames, model.cfg.n_vision_tokens, model.cfg.d_vision)
    assert model.resampler(feats).shape == (2, model.cfg.n_latents, model.cfg.d_vision)


def test_kv_cache_matches_full_forward():
    model = make()
    randomize_bridge(model)
    ids = prompt()
    midx = media_index(ids, IMAGE)
    media = torch.randn(1, 3, 4, 32)
    with torch.no_grad():
        full, _ = model.flamingo_lm(ids, midx, media)
        first, past = model.flamingo_lm(ids[:, :10], midx[:, :10], media)
        rest = []
        for t in range(10, ids.shape[1]):
            out, past = model.flamingo_lm(ids[:, t:t + 1], midx[:, t:t + 1], media, past)
            rest.append(out)
    stepped = torch.cat([first, *rest], dim=1)
    assert torch.allclose(stepped, full, atol=1e-5), (stepped - full).abs().max()


def test_time_groups_change_nothing_for_a_single_image():
    plain, grouped = make(), make(resampler_time_groups=2)
    randomize_bridge(plain)
    grouped.load_state_dict(plain.state_dict())
    feats = torch.randn(2, 1, plain.cfg.n_vision_tokens, plain.cfg.d_vision)
    with torch.no_grad():
        assert torch.allclose(grouped.resampler(feats), plain.resampler(feats), atol=1e-6)


@pytest.mark.parametrize("frames", [4, 5, 8])
def test_time_groups_keep_early_and_late_frames_apart(frames):
    """The first group of latents sees only the first stretch of frames, the last group only the
    last stretch: a change in the last frame moves only the last group's latents."""
    model = make(resampler_time_groups=2)
    randomize_bridge(model)
    feats = torch.randn(1, frames, model.cfg.n_vision_tokens, model.cfg.d_vision)
    changed = feats.clone()
    changed[:, -1] = torch.randn_like(changed[:, -1])
    with torch.no_grad():
        diff = (model.resampler(changed) - model.resampler(feats)).abs().amax(dim=-1)[0]  # [l]
    half = model.cfg.n_latents // 2
    assert diff[:half].max() < 1e-5 and diff[half:].min() > 1e-3  # 1e-5: float rounding in the matmuls


def test_n_trainable_counts_only_the_opened_rows_of_a_qkv_weight():
    """Stage 3 trains the bridge alone; unfreeze_query_key adds each chosen head's query and key rows
    (2 x head_dim x d_model), not the whole qkv weight (3 x d_model x d_model)."""
    model = make()
    model.freeze_for_stage3()
    bridge = sum(p.numel() for p in list(model.resampler.parameters()) + list(model.flamingo_lm.xattn.parameters()))
    assert model.n_trainable() == bridge
    model.unfreeze_query_key([(1, 0), (1, 2), (3, 0)])
    assert model.n_trainable() == bridge + 3 * 2 * model.cfg.head_dim * model.cfg.d_model


def test_position_scale_squeezes_rope_positions_into_the_trained_range():
    """LanguageModel.position_scale (probes.lm --interpolate): with 0.5, position 2k turns as position k did;
    at 1 (what is exported) nothing changes."""
    from flamingo.model import LanguageModel
    lm = LanguageModel(FlamingoConfig(vocab_size=16, d_model=32, n_heads=2, n_layers=1))
    cos1, sin1 = lm.rope(0, 4, "cpu")
    lm.position_scale = 0.5
    cos2, sin2 = lm.rope(0, 8, "cpu")
    assert torch.allclose(cos2[..., ::2, :], cos1) and torch.allclose(sin2[..., ::2, :], sin1)
    assert not torch.allclose(cos2[..., :4, :], cos1)


def test_ibn_stages_normalise_half_their_channels_per_image_and_export_to_onnx(tmp_path):
    import onnx
    from flamingo.model import IBN, VisionEncoder
    plain = VisionEncoder(FlamingoConfig())
    assert not any(isinstance(m, IBN) for m in plain.modules()), 'vision_ibn=0 is the shipped encoder, unchanged'
    enc = VisionEncoder(FlamingoConfig(vision_ibn=2)).eval()
    assert sum(isinstance(m, IBN) for m in enc.modules()) == 2
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        alone = enc(x[:1])
        assert torch.allclose(enc(x)[:1], alone, atol=1e-5), 'in eval mode an image does not depend on its batch'
        torch.onnx.export(enc, (x,), tmp_path / 'v.onnx', input_names=['pixel_values'], output_names=['f'],
                          dynamic_axes={'pixel_values': {0: 'n'}}, opset_version=17)
    graph = onnx.load(tmp_path / 'v.onnx')
    onnx.checker.check_model(graph)
    assert sum(n.op_type == 'InstanceNormalization' for n in graph.graph.node) == 2


def test_a_plain_encoders_weights_continue_with_ibn_keeping_the_batch_normalised_half():
    from flamingo.model import VisionEncoder, ibn_state_from_batchnorm
    torch.manual_seed(0)
    plain = VisionEncoder(FlamingoConfig())
    plain.train()
    with torch.no_grad():  # running statistics and affine rows that are not the defaults
        for _ in range(3):
            plain(torch.randn(8, 3, 64, 64) * 2 + 1)
        for m in plain.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5), m.bias.uniform_(-0.5, 0.5)
    plain.eval()
    cfg = FlamingoConfig(vision_ibn=2)
    ibn = VisionEncoder(cfg).eval()
    ibn.load_state_dict(ibn_state_from_batchnorm(plain.state_dict(), cfg))  # strict: every key matched
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        first_plain, first_ibn = plain.convs[:2](x), ibn.convs[:2](x)
    half = first_plain.shape[1] // 2
    assert torch.allclose(first_ibn[:, half:], first_plain[:, half:], atol=1e-6), 'BatchNorm half unchanged'
    assert not torch.allclose(first_ibn[:, :half], first_plain[:, :half], atol=1e-3), 'the other half is per image'
    gamma, beta = plain.convs[1].weight[:half], plain.convs[1].bias[:half]
    assert torch.allclose(first_ibn[:, :half].mean((2, 3)), beta.expand(2, -1).detach(), atol=1e-5)
    assert torch.allclose(first_ibn[:, :half].std((2, 3), unbiased=False), gamma.abs().expand(2, -1).detach(), atol=1e-2)
    assert torch.equal(ibn.convs[12].weight, plain.convs[12].weight), 'the later stages as they were'
    with torch.no_grad():
        assert ibn(x).shape == plain(x).shape


def test_a_stitching_layer_ends_the_encoder_only_when_asked_and_exports_to_onnx(tmp_path):
    import onnx
    from flamingo.model import VisionEncoder
    assert VisionEncoder(FlamingoConfig()).stitch is None, 'vision_stitch=False is the shipped encoder, unchanged'
    plain = VisionEncoder(FlamingoConfig()).eval()
    stitched = VisionEncoder(FlamingoConfig(vision_stitch=True)).eval()
    missing = stitched.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert sorted(missing) == ['stitch.bias', 'stitch.weight']
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        stitched.stitch.weight.copy_(2 * torch.eye(128))
        stitched.stitch.bias.fill_(0.5)
        assert torch.allclose(stitched(x), 2 * plain(x) + 0.5, atol=1e-5)
        torch.onnx.export(stitched, (x,), tmp_path / 'v.onnx', input_names=['pixel_values'], output_names=['f'],
                          dynamic_axes={'pixel_values': {0: 'n'}}, opset_version=17)
    onnx.checker.check_model(onnx.load(tmp_path / 'v.onnx'))
