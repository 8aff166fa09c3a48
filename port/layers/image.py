"""The image-operation layers: bed of nails (``nailbed``), Gaussian blur (``blur``),
horizontal reflection (``href``), bilinear resize (``resize``), random rescale and crop
(``rscale``) and colour-space changes (``rgb2yuv``, ``rgb2lab``).

The twins of NailbedLayer, GaussianBlurLayer, HorizontalReflectionLayer, ResizeLayer,
RandomScaleLayer, RGBToYUVLayer and RGBToLABLayer in layer.cu; the array work is cudaconv2's
(port/cudaconv2/). resize, rscale, rgb2yuv and rgb2lab have no backward pass in the original (it
asserts false; the parser forbids weight layers below them), and none here.

Layout: images (C, H, W, N) flattened as c·H·W + y·W + x. Gradients are the descent
direction −∂L/∂·.
"""
from __future__ import annotations

import numpy as np

from port import backend
from port import cudaconv2 as cc
from port.layers.base import PASS_TRAIN, Layer


class NailbedLayer(Layer):
    """y[c, o] = x[c, start + o·stride] in both directions; backward scatters into zeros.

    Ports: alexnet-2012/src/layer.cu:1439-1445 NailbedLayer::NailbedLayer
    """

    def __init__(self, dic: dict, net):
        super().__init__(dic, net)
        self.channels = int(dic["channels"])
        self.start = int(dic["start"])
        self.stride = int(dic["stride"])
        self.outputs_x = int(dic["outputsX"])
        self.img_size = int(dic["imgSize"])

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1447-1449 NailbedLayer::fpropActs"""
        self.acts = cc.conv_bed_of_nails(self.inputs[0], self.channels, self.img_size, self.start,
                                         self.stride)

    def bprop_acts(self, v, inp_idx, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1451-1453 NailbedLayer::bpropActs"""
        return cc.conv_bed_of_nails_undo(v, self.channels, self.img_size, self.start, self.stride)


class GaussianBlurLayer(Layer):
    """Separable blur with the parser's normalised 1-D ``filter``: horizontal, then vertical.

    Ports: alexnet-2012/src/layer.cu:1460-1463 GaussianBlurLayer::GaussianBlurLayer
    """

    def __init__(self, dic: dict, net):
        super().__init__(dic, net)
        self.channels = int(dic["channels"])
        self.h_filter = dic["filter"]                          # (1, filterSize), host
        self.filter = None

    def copy_to_gpu(self) -> None:
        """Ports: alexnet-2012/src/layer.cu:1476-1478 GaussianBlurLayer::copyToGPU"""
        self.filter = backend.xp().asarray(self.h_filter, dtype=self.net.dtype)

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1465-1468 GaussianBlurLayer::fpropActs"""
        h = cc.conv_gaussian_blur(self.inputs[0], self.filter, True, self.channels)
        self.acts = cc.conv_gaussian_blur(h, self.filter, False, self.channels)

    def bprop_acts(self, v, inp_idx, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1470-1474 GaussianBlurLayer::bpropActs"""
        h = cc.conv_gaussian_blur(v, self.filter, True, self.channels)
        return cc.conv_gaussian_blur(h, self.filter, False, self.channels)


class HorizontalReflectionLayer(Layer):
    """y[c, r, W−1−col] = x[c, r, col]; the backward pass is the same flip.

    Ports: alexnet-2012/src/layer.cu:1485-1489 HorizontalReflectionLayer::HorizontalReflectionLayer
    """

    def __init__(self, dic: dict, net):
        super().__init__(dic, net)
        self.channels = int(dic["channels"])
        self.img_size = int(dic["imgSize"])

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1491-1493 HorizontalReflectionLayer::fpropActs"""
        self.acts = cc.conv_reflect_horizontal(self.inputs[0], self.channels, self.img_size)

    def bprop_acts(self, v, inp_idx, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1495-1497 HorizontalReflectionLayer::bpropActs"""
        return cc.conv_reflect_horizontal(v, self.channels, self.img_size)


class ResizeLayer(Layer):
    """Bilinear resize from ``imgSize`` to ``tgtSize`` = ⌊imgSize/scale⌋ (forward only).

    Ports: alexnet-2012/src/layer.cu:1504-1509 ResizeLayer::ResizeLayer
    """

    def __init__(self, dic: dict, net):
        super().__init__(dic, net)
        self.channels = int(dic["channels"])
        self.img_size = int(dic["imgSize"])
        self.tgt_size = int(dic["tgtSize"])
        self.scale = float(dic["scale"])

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1511-1513 ResizeLayer::fpropActs"""
        self.acts = cc.conv_resize_bilinear(self.inputs[0], self.img_size, self.tgt_size, self.scale)


class RandomScaleLayer(Layer):
    """``rscale``: training passes rescale by a random factor and take a random ``tgtSize`` crop;
    other passes take the centre crop. Forward only (no cfg of the release uses it).

    Scale s = tgtSize + k is drawn with P(k) ∝ (k + 1)², k < imgSize − ⌊imgSize/maxScale⌋ + 1
    (the quotient in float32, as the original's)
    (the share of all crops that scale holds), its factor uniform in
    [max(1, img/(s + 1)), img/s].

    Ports: alexnet-2012/src/layer.cu:1364-1386 RandomScaleLayer::RandomScaleLayer
    """

    def __init__(self, dic: dict, net):
        super().__init__(dic, net)
        self.channels = int(dic["channels"])
        self.max_scale = float(dic["maxScale"])
        self.img_size = int(dic["imgSize"])
        self.tgt_size = int(dic["tgtSize"])
        # int / float in float32 (maxScale is read as a float), then truncated; the double
        # quotient differs (size 18 at 1.2: 18/1.2f = 14.999999 gives 14, 18/1.2 = 15.0 gives 15)
        min_scaled = int(np.float32(self.img_size) / np.float32(self.max_scale))
        num_scales = self.img_size - min_scaled + 1
        num_crops = num_scales * (num_scales + 1) * (2 * num_scales + 1) // 6
        probs = [1.0 / num_crops]
        for s in range(1, num_scales):
            probs.append(probs[-1] + (s + 1) * (s + 1) / num_crops)
        self.scale_probs = probs

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """DIVERGES: test passes take the centre crop. The original tests ``passType &
        PASS_MULTIVIEW_TEST`` first, which plain test passes also match (they share bit 0x2), and
        copies the uncropped input there, of the wrong size; gradient-check and feature passes
        it leaves untouched.

        Ports: alexnet-2012/src/layer.cu:1388-1428 RandomScaleLayer::fpropActs
        """
        x = self.inputs[0]
        if pass_type == PASS_TRAIN:
            rng = self.net.rng
            r = rng.random()
            rescaled, factor = self.tgt_size, self.max_scale
            for s, p in enumerate(self.scale_probs):
                if r <= p:
                    rescaled += s
                    end = self.img_size / rescaled
                    start = max(1.0, self.img_size / (1.0 + rescaled))
                    factor = start + rng.random() * (end - start)
                    break
            max_start = rescaled - self.tgt_size
            start_y, start_x = (int(v) for v in rng.integers(0, max_start + 1, size=2))
            if rescaled != self.img_size:
                x = cc.conv_resize_bilinear(x, self.img_size, rescaled, factor)
            self.acts = cc.conv_crop(x, rescaled, self.tgt_size, start_y, start_x)
        else:
            c = (self.img_size - self.tgt_size) // 2
            self.acts = cc.conv_crop(x, self.img_size, self.tgt_size, c, c)


class RGBToYUVLayer(Layer):
    """Ports: alexnet-2012/src/layer.cu:1525-1526 RGBToYUVLayer::RGBToYUVLayer"""

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1528-1530 RGBToYUVLayer::fpropActs"""
        self.acts = cc.conv_rgb_to_yuv(self.inputs[0])


class RGBToLABLayer(Layer):
    """Ports: alexnet-2012/src/layer.cu:1542-1544 RGBToLABLayer::RGBToLABLayer"""

    def __init__(self, dic: dict, net):
        super().__init__(dic, net)
        self.center = bool(dic["center"])

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """Ports: alexnet-2012/src/layer.cu:1546-1548 RGBToLABLayer::fpropActs"""
        self.acts = cc.conv_rgb_to_lab(self.inputs[0], self.center)


__all__ = ["NailbedLayer", "GaussianBlurLayer", "HorizontalReflectionLayer", "ResizeLayer",
           "RandomScaleLayer", "RGBToYUVLayer", "RGBToLABLayer"]
