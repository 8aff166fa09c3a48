"""cudaconv2 on NumPy/CuPy: the convolution, pooling and normalization kernels the 2012 release
calls but does not ship (its build links a cudaconv2 library that is not in the release).

Ported from the SVN r561 copy (``cuda-convnet-r561/src/cudaconv2/``), plus the 2013 additions
the release calls: the cross-map normalization with ``minDiv`` and the horizontal reflection,
both from cuda-convnet2 (``cudaconv3/src/conv_util.cu``). One module per original file:

- :mod:`.filter_acts`  convolution / local forward (``filterActs``);
- :mod:`.img_acts`     their backward to the images (``imgActs``);
- :mod:`.weight_acts`  their weight gradients (``weightActs``);
- :mod:`.conv_util`    pooling, normalization and image operations.

Every function takes and returns 2-D matrices in the original layout (features × cases,
images as colours × rows × columns × cases flattened row-major) and returns a new array:
the original's ``targets``/``scaleTargets``/``scaleOutput`` accumulation is the caller's job.
The original's asserts are ``ValueError`` with a message naming the function and the rule.
"""
from port.cudaconv2.conv_util import (
    conv_bed_of_nails, conv_bed_of_nails_undo, conv_contrast_norm, conv_contrast_norm_undo,
    conv_crop, conv_gaussian_blur, conv_local_avg_undo, conv_local_max_undo, conv_local_pool,
    conv_reflect_horizontal, conv_resize_bilinear, conv_response_norm,
    conv_response_norm_cross_map, conv_response_norm_cross_map_undo, conv_response_norm_undo,
    conv_rgb_to_lab, conv_rgb_to_yuv, conv_tica, conv_tica_grad,
)
from port.cudaconv2.filter_acts import (
    conv_filter_acts, conv_filter_acts_sparse, local_filter_acts, local_filter_acts_sparse,
)
from port.cudaconv2.img_acts import (
    conv_img_acts, conv_img_acts_sparse, local_img_acts, local_img_acts_sparse,
)
from port.cudaconv2.weight_acts import (
    conv_weight_acts, conv_weight_acts_sparse, local_weight_acts, local_weight_acts_sparse,
)

__all__ = [
    "conv_bed_of_nails", "conv_bed_of_nails_undo", "conv_contrast_norm", "conv_contrast_norm_undo",
    "conv_crop", "conv_gaussian_blur", "conv_local_avg_undo", "conv_local_max_undo",
    "conv_local_pool", "conv_reflect_horizontal", "conv_resize_bilinear", "conv_response_norm",
    "conv_response_norm_cross_map", "conv_response_norm_cross_map_undo", "conv_response_norm_undo",
    "conv_rgb_to_lab", "conv_rgb_to_yuv", "conv_tica", "conv_tica_grad",
    "conv_filter_acts", "conv_filter_acts_sparse", "local_filter_acts", "local_filter_acts_sparse",
    "conv_img_acts", "conv_img_acts_sparse", "local_img_acts", "local_img_acts_sparse",
    "conv_weight_acts", "conv_weight_acts_sparse", "local_weight_acts", "local_weight_acts_sparse",
]
