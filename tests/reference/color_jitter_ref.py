"""color_jitter_ref.py - float64 reference for the `color` augmentation
(tests/test_augment.c): torchvision 0.14's ColorJitter functions
(functional_tensor.py: _blend, rgb_to_grayscale, adjust_brightness,
adjust_contrast, adjust_saturation, adjust_hue with _rgb2hsv/_hsv2rgb),
rewritten on plain torch, applied with fixed factors in the order
brightness, contrast, saturation, hue to the test's pattern images.

usage: color_jitter_ref.py N C H W [LO HI BRIGHTNESS CONTRAST SATURATION HUE]...
(factors as the plugin's `fixed` mode uses them: 1 + b, 1 + c, 1 + s, +h;
a 0 amount is off). Prints the result of each case in [LO, HI], one value
a line, the cases one after the other (one run: importing torch is slow)."""
import sys

import torch


def pattern(n, c, h, w, lo, hi):
    # the same formula as rgb_pattern() in test_augment.c, in f32
    i, k, y, x = torch.meshgrid(torch.arange(n), torch.arange(c),
                                torch.arange(h), torch.arange(w),
                                indexing="ij")
    u = ((i * 37 + k * 53 + y * 11 + x * 7) % 97).to(torch.float32) / 96.0
    return (lo + (hi - lo) * u).to(torch.float32).double()


def blend(a, b, f):
    return (f * a + (1.0 - f) * b).clamp(0, 1.0)


def grey(img):
    r, g, b = img.unbind(dim=-3)
    return (0.2989 * r + 0.587 * g + 0.114 * b).unsqueeze(-3)


def brightness(img, f):
    return blend(img, torch.zeros_like(img), f)


def contrast(img, f):
    src = grey(img) if img.shape[-3] == 3 else img
    return blend(img, torch.mean(src, dim=(-3, -2, -1), keepdim=True), f)


def saturation(img, f):
    return img if img.shape[-3] == 1 else blend(img, grey(img), f)


def rgb2hsv(img):
    r, g, b = img.unbind(dim=-3)
    maxc = torch.max(img, dim=-3).values
    minc = torch.min(img, dim=-3).values
    eqc = maxc == minc
    cr = maxc - minc
    ones = torch.ones_like(maxc)
    s = cr / torch.where(eqc, ones, maxc)
    crd = torch.where(eqc, ones, cr)
    rc, gc, bc = (maxc - r) / crd, (maxc - g) / crd, (maxc - b) / crd
    hr = (maxc == r) * (bc - gc)
    hg = ((maxc == g) & (maxc != r)) * (2.0 + rc - bc)
    hb = ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)
    h = torch.fmod((hr + hg + hb) / 6.0 + 1.0, 1.0)
    return torch.stack((h, s, maxc), dim=-3)


def hsv2rgb(img):
    h, s, v = img.unbind(dim=-3)
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.to(torch.int32) % 6
    p = torch.clamp(v * (1.0 - s), 0.0, 1.0)
    q = torch.clamp(v * (1.0 - s * f), 0.0, 1.0)
    t = torch.clamp(v * (1.0 - s * (1.0 - f)), 0.0, 1.0)
    mask = i.unsqueeze(dim=-3) == torch.arange(6).view(-1, 1, 1)
    a1 = torch.stack((v, q, p, p, t, v), dim=-3)
    a2 = torch.stack((t, v, v, q, p, p), dim=-3)
    a3 = torch.stack((p, p, t, v, v, q), dim=-3)
    a4 = torch.stack((a1, a2, a3), dim=-4)
    return torch.einsum("...ijk, ...xijk -> ...xjk", mask.to(img.dtype), a4)


def hue(img, shift):
    if img.shape[-3] == 1:
        return img
    h, s, v = rgb2hsv(img).unbind(dim=-3)
    return hsv2rgb(torch.stack(((h + shift) % 1.0, s, v), dim=-3))


def main():
    n, c, h, w = (int(a) for a in sys.argv[1:5])
    rest = [float(a) for a in sys.argv[5:]]
    for k in range(0, len(rest), 6):
        lo, hi, b, ct, sa, hu = rest[k:k + 6]
        x = (pattern(n, c, h, w, lo, hi) - lo) / (hi - lo)
        if b > 0:
            x = brightness(x, 1.0 + b)
        if ct > 0:
            x = contrast(x, 1.0 + ct)
        if sa > 0:
            x = saturation(x, 1.0 + sa)
        if hu > 0:
            x = hue(x, hu)
        for v in (lo + (hi - lo) * x).flatten().tolist():
            print(repr(v))


main()
