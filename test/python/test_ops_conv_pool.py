"""FP32 parity of python/qnt/ops/conv_pool.py: convolutions, linear layers,
pooling and reductions over axes (mean, amax, amin)."""

import pytest
from frontend_util import F, Fn, check_case, conv, nn, parametrize_cases, torch

CASES = [
    # convolutions
    ("conv", lambda: conv(), [(1, 3, 8, 8)], "tosa.conv2d"),
    ("conv_stride2_pad1", lambda: nn.Conv2d(3, 8, 3, stride=2, padding=1), [(1, 3, 8, 8)], None),
    ("conv_stride2_odd", lambda: nn.Conv2d(3, 8, 3, stride=2, padding=1), [(1, 3, 9, 7)], None),
    # TOSA cannot express this window without slicing the input: qnt.conv2d.
    ("conv_1x1_stride2", lambda: nn.Conv2d(4, 8, 1, stride=2), [(1, 4, 8, 8)], "qnt.conv2d"),
    ("depthwise_1x1_stride2", lambda: nn.Conv2d(4, 4, 1, stride=2, groups=4), [(1, 4, 8, 8)],
     "qnt.conv2d"),
    ("conv_dilation", lambda: nn.Conv2d(4, 8, 3, padding=2, dilation=2), [(1, 4, 9, 9)], None),
    ("conv_dilation_stride", lambda: nn.Conv2d(4, 8, 3, stride=2, padding=1, dilation=(2, 1)),
     [(1, 4, 10, 9)], None),
    ("conv_rect_no_bias", lambda: nn.Conv2d(4, 6, (3, 5), stride=(2, 1), padding=(1, 2), bias=False),
     [(1, 4, 8, 8)], None),
    ("conv_padding_same", lambda: nn.Conv2d(4, 4, 4, padding="same"), [(1, 4, 7, 7)], None),
    ("conv_batch2", lambda: conv(), [(2, 3, 6, 6)], None),
    ("depthwise", lambda: nn.Conv2d(8, 8, 3, padding=1, groups=8), [(1, 8, 8, 8)],
     "tosa.depthwise_conv2d"),
    ("depthwise_multiplier_stride2", lambda: nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=4),
     [(1, 4, 8, 8)], "tosa.depthwise_conv2d"),
    ("grouped", lambda: nn.Conv2d(4, 6, 3, padding=1, groups=2), [(1, 4, 8, 8)], "qnt.conv2d"),
    ("grouped_stride2", lambda: nn.Conv2d(8, 8, 3, stride=2, groups=4), [(1, 8, 8, 8)], "qnt.conv2d"),
    # 1-D convolutions (as 2-D of height 1)
    ("conv1d", lambda: nn.Conv1d(4, 6, 3, padding=1), [(2, 4, 9)], "tosa.conv2d"),
    ("conv1d_stride_dilation_no_bias", lambda: nn.Conv1d(4, 6, 3, stride=2, dilation=2,
                                                        bias=False), [(1, 4, 12)], None),
    ("conv1d_depthwise_same", lambda: nn.Conv1d(4, 4, 5, padding="same", groups=4),
     [(1, 4, 10)], "tosa.depthwise_conv2d"),
    ("conv1d_grouped", lambda: nn.Conv1d(4, 6, 3, groups=2), [(1, 4, 8)], "qnt.conv2d"),
    # linear
    ("linear", lambda: nn.Linear(12, 7), [(3, 12)], "tosa.matmul"),
    ("linear_no_bias", lambda: nn.Linear(12, 7, bias=False), [(1, 12)], None),
    ("linear_rank3", lambda: nn.Linear(5, 4), [(2, 3, 5)], None),
    # pooling
    ("maxpool", lambda: nn.MaxPool2d(3, 2, 1), [(1, 3, 8, 8)], "tosa.max_pool2d"),
    ("maxpool_ceil", lambda: nn.MaxPool2d(3, 2, ceil_mode=True), [(1, 3, 8, 8)], None),
    ("maxpool_ceil_s1_p1", lambda: nn.MaxPool2d(3, 1, 1, ceil_mode=True), [(1, 3, 7, 7)], None),
    ("maxpool_ceil_odd", lambda: nn.MaxPool2d(2, 2, ceil_mode=True), [(1, 3, 7, 9)], None),
    ("maxpool_drops_rows", lambda: nn.MaxPool2d(2, 3), [(1, 3, 9, 10)], "tosa.slice"),
    ("maxpool_functional", lambda: Fn(lambda s, x: F.max_pool2d(x, 2)), [(1, 3, 8, 8)], None),
    ("avgpool", lambda: nn.AvgPool2d(2), [(1, 3, 8, 8)], "tosa.avg_pool2d"),
    ("avgpool_count_include_pad", lambda: nn.AvgPool2d(3, 2, 1), [(1, 3, 8, 8)], "tosa.pad"),
    ("avgpool_exclude_pad", lambda: nn.AvgPool2d(3, 2, 1, count_include_pad=False),
     [(1, 3, 8, 8)], None),
    ("avgpool_ceil_include_pad", lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True), [(1, 3, 8, 8)], None),
    ("avgpool_ceil_exclude_pad",
     lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False), [(1, 3, 8, 8)], None),
    ("avgpool_functional", lambda: Fn(lambda s, x: F.avg_pool2d(x, 3, 1, 1)), [(1, 3, 6, 6)], None),
    ("adaptive_avgpool_1", lambda: nn.AdaptiveAvgPool2d(1), [(1, 3, 8, 8)], None),
    ("adaptive_avgpool_2x4", lambda: nn.AdaptiveAvgPool2d((2, 4)), [(1, 3, 8, 8)], None),
    ("adaptive_avgpool_functional",
     lambda: Fn(lambda s, x: F.adaptive_avg_pool2d(s.c(x), (1, 1)), c=conv()), [(1, 3, 6, 6)], None),
    ("mean_spatial", lambda: Fn(lambda s, x: s.c(x).mean((2, 3)), c=conv()), [(1, 3, 6, 6)], None),
    ("mean_spatial_keepdim", lambda: Fn(lambda s, x: s.c(x).mean([-1, -2], keepdim=True), c=conv()),
     [(1, 3, 6, 6)], None),
    ("mean_channels", lambda: Fn(lambda s, x: s.c(x).mean(1), c=conv()), [(1, 3, 6, 6)],
     "tosa.reduce_sum"),
    ("mean_mixed_keepdim", lambda: Fn(lambda s, x: torch.mean(s.c(x), (1, 3), keepdim=True),
                                      c=conv()), [(1, 3, 6, 6)], None),
    ("mean_2d", lambda: Fn(lambda s, x: torch.mean(x, -1)), [(3, 5)], None),
    ("amax_channels", lambda: Fn(lambda s, x: s.c(x).amax(1), c=conv()), [(1, 3, 5, 6)],
     "tosa.reduce_max"),
    ("amin_spatial_keepdim", lambda: Fn(lambda s, x: torch.amin(s.c(x), (2, 3), keepdim=True),
                                        c=conv()), [(1, 3, 5, 6)], "tosa.reduce_min"),
]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@parametrize_cases(CASES)
def test_op(factory, shapes, expect, tmp_path):
    check_case(factory, shapes, expect, tmp_path)
