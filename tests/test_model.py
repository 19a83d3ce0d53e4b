from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from wbc.model import (  # noqa: E402
    SeedConfig,
    WbcNetConfig,
    build_model,
    config_from_dict,
    config_to_dict,
    count_flops,
    count_params,
    default_config,
)


@pytest.mark.parametrize("name,cfg", [("wbcnet", WbcNetConfig()), ("seed", SeedConfig())])
class TestNetworks:
    def test_output_shape_and_finite(self, name: str, cfg: WbcNetConfig | SeedConfig) -> None:
        """(N, 3, h, w) -> finite logits (N, 4) in train and eval mode."""
        m = build_model(name, cfg)
        x = torch.randn(3, 3, *cfg.preprocess.input_hw)
        for mode in (True, False):
            m.train(mode)
            y = m(x)
            assert y.shape == (3, 4) and torch.isfinite(y).all()

    def test_config_round_trip(self, name: str, cfg: WbcNetConfig | SeedConfig) -> None:
        """A config stored as a dict (checkpoint, card) rebuilds the same config."""
        assert config_from_dict(name, config_to_dict(cfg)) == cfg

    def test_counts(self, name: str, cfg: WbcNetConfig | SeedConfig) -> None:
        """Parameters and FLOPs are counted and positive."""
        m = build_model(name, cfg)
        assert count_params(m) > 10_000
        assert count_flops(m, cfg.preprocess.input_hw) > 1_000_000


def test_counts_of_a_known_network() -> None:
    """The counts by hand for one convolution and one linear layer: 3*8*9 + 8 weights and biases, and
    2 FLOPs per multiply-add (8 outputs of 27 products at 16x16 px, then 4 of 8*16*16)."""
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(8 * 16 * 16, 4))
    assert count_params(net) == 3 * 8 * 9 + 8 + 8 * 16 * 16 * 4 + 4
    assert count_flops(net, (16, 16)) == 2 * (8 * 27 * 16 * 16 + 4 * 8 * 16 * 16)


def test_shipped_card_counts_its_network() -> None:
    """The shipped card's parameters and FLOPs (the README's 172 k / 31 M) are those of the network the card
    names in the default config, at the card's input size."""
    import json

    from wbc.card import DEFAULT_MODEL_DIR

    card = json.loads((DEFAULT_MODEL_DIR / "model.json").read_text())
    name = card["training"]["config"]["model"]
    m = build_model(name)
    assert count_params(m) == card["parameters"] == 172_164
    assert count_flops(m, tuple(card["input"]["shape"][1:3])) == card["flops_per_image"]


def test_seed_replica_shape() -> None:
    """The replica has four conv blocks and the 512-256-128 head with dropout 0.5/0.4/0.3."""
    m = build_model("seed")
    convs = [l for l in m.features if isinstance(l, torch.nn.Conv2d)]
    dense = [l.out_features for l in m.head if isinstance(l, torch.nn.Linear)]
    drops = [l.p for l in m.head if isinstance(l, torch.nn.Dropout)]
    assert len(convs) == 4 and dense == [512, 256, 128, 4] and drops == [0.5, 0.4, 0.3]


def test_unknown_model() -> None:
    """An unknown network name is refused with the choices."""
    with pytest.raises(ValueError, match="wbcnet, seed"):
        build_model("resnet")


def test_window() -> None:
    """A crop window changes only what the cell network is shown; the whole-field replica has none."""
    cfg = default_config("wbcnet", 128)
    assert cfg.preprocess.window == 128 and cfg.widths == default_config("wbcnet").widths
    with pytest.raises(ValueError, match="whole field"):
        default_config("seed", 128)
    with pytest.raises(ValueError, match="32..640"):
        default_config("wbcnet", 4)


def test_an_older_checkpoints_config_rebuilds_its_own_network() -> None:
    """A wbcnet config stored before stem_convs and first_stride existed is the network of then: one stem conv and a
    first stage that keeps the stem's resolution (96 px -> 48 -> 48 -> 24 -> 12). Its weights fit a stride-2 first
    stage too, so a wrong default would load without a word and read every image at another scale."""
    stored = config_to_dict(WbcNetConfig())
    del stored["stem_convs"], stored["first_stride"]
    cfg = config_from_dict("wbcnet", stored)
    assert (cfg.stem_convs, cfg.first_stride) == (1, 1)
    assert config_from_dict("wbcnet", config_to_dict(cfg)) == cfg
    net = build_model("wbcnet", cfg).eval()
    assert net.forward_features(torch.zeros(1, 3, 96, 96)).shape == (1, 96, 12, 12)


def test_network_options_are_taken_to_their_limits_and_no_further() -> None:
    """--input-size 32..320, --window 32..640 and one to five stages of 4..512 channels are taken at their ends
    (and build a network that runs); one step past any end is refused, naming the range."""
    assert default_config("wbcnet", size=32).preprocess.size == 32
    assert default_config("wbcnet", size=320).preprocess.size == 320
    assert default_config("wbcnet", window=32).preprocess.window == 32
    assert default_config("wbcnet", window=640).preprocess.window == 640
    for widths in ([4], [512], [4, 8, 16, 32, 64]):
        cfg = default_config("wbcnet", size=32, widths=widths)
        assert cfg.widths == tuple(widths)
        assert build_model("wbcnet", cfg).eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 4)
    for kwargs, says in (({"size": 31}, "32..320"), ({"size": 321}, "32..320"), ({"window": 31}, "32..640"),
                         ({"window": 641}, "32..640"), ({"widths": [3]}, "4..512"), ({"widths": [513]}, "4..512"),
                         ({"widths": [8] * 6}, "one to five stages"), ({"widths": []}, "one to five stages")):
        with pytest.raises(ValueError, match=says):
            default_config("wbcnet", **kwargs)


def test_the_shipped_graphs_logits_and_activation_maps_are_the_networks_own() -> None:
    """The exported graph pools wbcnet's feature map by its mean and draws the class activation maps from the
    same fc: its logits are the network's own (a network pooling otherwise trained one model and shipped
    another), and each map averages to its logit less the bias."""
    from wbc.export import _Deployable

    cfg = WbcNetConfig()
    net = build_model("wbcnet", cfg).eval()
    spec = cfg.preprocess
    crops = torch.randint(0, 256, (2, *spec.input_hw, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    mean, std = torch.tensor(spec.mean).view(1, 3, 1, 1), torch.tensor(spec.std).view(1, 3, 1, 1)
    with torch.no_grad():
        want = net((crops.permute(0, 3, 1, 2).float() / 255 - mean) / std)
        _, logits, cam = _Deployable(net, 1.0, spec)(crops)
    assert torch.allclose(logits, want, atol=1e-4)
    assert torch.allclose(cam.mean(dim=(2, 3)) + net.fc.bias, want, atol=1e-4)


def test_wbcnets_dropout_is_the_configs() -> None:
    """The dropout a config asks for is the network's: two passes in train mode differ, in eval mode they agree."""
    net = build_model("wbcnet", WbcNetConfig(dropout=0.5))
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    # BatchNorm in train mode is deterministic on one batch: only dropout can tell two passes apart.
    assert not torch.allclose(net(x), net(x))
    net.eval()
    assert torch.equal(net(x), net(x))


@pytest.mark.parametrize("name,cfg", [("wbcnet", WbcNetConfig()), ("seed", SeedConfig())])
def test_a_config_read_back_from_json_is_the_same_config(name: str, cfg: WbcNetConfig | SeedConfig) -> None:
    """A config stored in a checkpoint's or card's JSON comes back with tuples, not lists: equal to the one
    trained and hashable like it."""
    import json

    back = config_from_dict(name, json.loads(json.dumps(config_to_dict(cfg))))
    assert back == cfg and hash(back) == hash(cfg)


def test_counting_flops_leaves_the_network_as_it_was() -> None:
    """Counting FLOPs (as `wbc export` does on the trained network) changes neither its weights nor its BatchNorm
    statistics, and leaves it in the mode it was in."""
    net = build_model("wbcnet", WbcNetConfig(widths=(8, 16)))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    count_flops(net, (96, 96))
    assert net.training
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


def test_seed_replica_normalises_each_conv_block() -> None:
    """Each of the replica's conv blocks is Conv -> LeakyReLU(0.1) -> BatchNorm -> MaxPool, as the reference's."""
    kinds = [type(layer) for layer in build_model("seed").features]
    assert kinds == [torch.nn.Conv2d, torch.nn.LeakyReLU, torch.nn.BatchNorm2d, torch.nn.MaxPool2d] * 4
