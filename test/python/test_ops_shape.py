"""FP32 parity of python/qnt/ops/shape.py: reshapes, permutes, concatenation,
splits, constant padding and resizing."""

from frontend_util import F, Fn, check_case, conv, nn, parametrize_cases, torch, torchvision

CASES = [
    # data movement
    ("cat_channels", lambda: Fn(lambda s, x: torch.cat([s.a(x), s.b(x)], 1), a=conv(), b=conv(3, 4)),
     [(1, 3, 6, 6)], "tosa.concat"),
    ("cat_width_negative_dim", lambda: Fn(lambda s, x: torch.cat([s.a(x), s.a(x) * 2], -1), a=conv()),
     [(1, 3, 4, 6)], None),
    ("cat_2d", lambda: Fn(lambda s, x: torch.cat((x, x * 2), dim=0)), [(2, 5)], None),
    ("flatten_after_conv", lambda: nn.Sequential(conv(), nn.Flatten(), nn.Linear(8 * 5 * 5, 10)),
     [(1, 3, 5, 5)], "tosa.transpose"),
    ("torch_flatten_start", lambda: Fn(lambda s, x: torch.flatten(s.c(x), 2), c=conv()),
     [(2, 3, 4, 5)], None),
    ("view_reshape", lambda: Fn(lambda s, x: s.c(x).view(x.size(0), -1).reshape(2, 4, -1), c=conv()),
     [(2, 3, 3, 3)], None),
    ("permute_flatten", lambda: Fn(lambda s, x: s.c(x).permute(0, 2, 3, 1).flatten(1), c=conv()),
     [(1, 3, 4, 5)], None),
    ("permute_to_nchw_conv", lambda: Fn(lambda s, x: s.c(x.permute(0, 3, 1, 2)), c=conv()),
     [(1, 4, 5, 3)], None),
    ("transpose_contiguous", lambda: Fn(lambda s, x: torch.transpose(s.c(x), 1, 3).contiguous(),
                                        c=conv()), [(1, 3, 4, 5)], None),
    ("channel_shuffle", lambda: Fn(lambda s, x: s.d(torchvision.models.shufflenetv2.channel_shuffle(
        s.c(x), 2)), c=conv(), d=conv(8, 4)), [(1, 3, 5, 5)], None),
    ("chunk_cat", lambda: Fn(lambda s, x: torch.cat([s.c(x).chunk(2, dim=1)[1], x], 1), c=conv(3, 6)),
     [(1, 3, 4, 4)], "tosa.slice"),
    ("index_int_and_slices", lambda: Fn(lambda s, x: x[:, 0, 1:4] * x[-1, 1:2, :3]),
     [(2, 3, 5)], "tosa.slice"),
    ("index_ellipsis_after_conv", lambda: Fn(lambda s, x: s.c(x)[..., 1:-1, 2], c=conv()),
     [(1, 3, 5, 6)], None),
    # steps above 1 (Swin's patch merging x[..., 0::2, 1::2, :]): a window,
    # padded at the end when the size runs out, reshaped, its first column
    ("slice_steps_after_conv", lambda: Fn(lambda s, x: s.c(x)[:, 1::2, 0::3, 1:], c=conv()),
     [(1, 3, 7, 8)], "tosa.pad"),
    ("slice_step_2d", lambda: Fn(lambda s, x: x[::2, 2:9:4] + 1), [(5, 10)], None),
    ("slice_step_int64", lambda: Fn(lambda s, x: (x * 4).to(torch.int64)[:, 0::2].float() + 1),
     [(2, 5)], "tosa.pad"),
    ("swin_patch_merging", lambda: Fn(lambda s, x: torch.cat(
        [x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :], x[..., 0::2, 1::2, :],
         x[..., 1::2, 1::2, :]], -1)), [(2, 6, 6, 4)], None),
    ("expand", lambda: Fn(lambda s, x: torch.cat([s.t.expand(x.shape[0], -1, -1), x], 1),
                          t=nn.Parameter(torch.randn(1, 1, 4))), [(3, 5, 4)], "tosa.tile"),
    ("split_2d", lambda: Fn(lambda s, x: torch.split(x, [2, 3], 1)[1] * 2), [(2, 5)], None),
    # constant padding (after a conv: NHWC), on every side, channels too
    ("zero_pad", lambda: nn.Sequential(conv(), nn.ZeroPad2d((1, 2, 0, 3))), [(1, 3, 4, 5)],
     "tosa.pad"),
    ("constant_pad", lambda: nn.Sequential(conv(), nn.ConstantPad2d(2, 0.5)), [(1, 3, 4, 4)],
     None),
    ("pad_channels", lambda: Fn(lambda s, x: F.pad(s.c(x), (1, 0, 0, 1, 2, 1), value=-1.5),
                                c=conv()), [(1, 3, 4, 4)], None),
    ("pad_2d", lambda: Fn(lambda s, x: F.pad(x, (3, 1))), [(2, 5)], None),
    # resizing: nearest (floor of o * in / out), bilinear with and without
    # align_corners; up, down, by size, by an integer or fractional factor
    ("upsample_nearest_2x", lambda: nn.Sequential(conv(), nn.Upsample(scale_factor=2)),
     [(1, 3, 4, 5)], "tosa.resize"),
    ("upsample_nearest_size", lambda: nn.Sequential(conv(), nn.UpsamplingNearest2d((7, 13))),
     [(1, 3, 4, 5)], None),
    ("interpolate_nearest_down", lambda: Fn(lambda s, x: F.interpolate(s.c(x), size=(3, 4)),
                                            c=conv()), [(1, 3, 7, 9)], None),
    ("interpolate_nearest_factor_1_5",
     lambda: Fn(lambda s, x: F.interpolate(s.c(x), scale_factor=1.5), c=conv()), [(1, 3, 7, 6)],
     None),
    ("upsample_bilinear_2x", lambda: nn.Sequential(conv(), nn.Upsample(scale_factor=2,
                                                                     mode="bilinear")),
     [(1, 3, 4, 5)], None),
    ("upsample_bilinear_align_corners", lambda: nn.Sequential(conv(), nn.UpsamplingBilinear2d(
        scale_factor=3)), [(1, 3, 4, 5)], None),
    ("interpolate_bilinear_size", lambda: Fn(lambda s, x: F.interpolate(
        s.c(x), size=(9, 4), mode="bilinear", align_corners=False), c=conv()), [(1, 3, 5, 7)], None),
    ("interpolate_bilinear_align_down", lambda: Fn(lambda s, x: F.interpolate(
        s.c(x), size=(3, 5), mode="bilinear", align_corners=True), c=conv()), [(1, 3, 7, 9)],
     None),
    ("interpolate_nchw_input", lambda: Fn(lambda s, x: F.interpolate(x, scale_factor=(2, 3))),
     [(1, 2, 3, 4)], None),
]


@parametrize_cases(CASES)
def test_op(factory, shapes, expect, tmp_path):
    check_case(factory, shapes, expect, tmp_path)
