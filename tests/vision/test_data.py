"""Image I/O, degradations, the default photographs, datasets and the DataModule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from difflab.vision.data import (
    HELDOUT_PHOTOS,
    TRAIN_PHOTOS,
    DegradedImageDataset,
    ImageReadError,
    PairedFolderDataset,
    RealESRGANDegradation,
    SRDataModule,
    bicubic_downsample,
    read_image,
)
from difflab.vision.data.degradations import gaussian_kernel, sinc_kernel
from difflab.vision.data.io import ImageDataError


def save_png(path, array: np.ndarray, mode: str | None = None) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    (Image.fromarray(array, mode) if mode else Image.fromarray(array)).save(path)


def random_uint8(shape, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) * 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------- io
def test_read_rgb_grey_rgba_palette(tmp_path):
    rgb = random_uint8((10, 12, 3))
    save_png(tmp_path / "rgb.png", rgb)
    img = read_image(tmp_path / "rgb.png")
    assert img.rgb.shape == (10, 12, 3) and img.alpha is None and img.note == ""
    np.testing.assert_allclose(img.rgb, rgb / 255.0, atol=1e-6)

    grey = random_uint8((10, 12), seed=1)
    save_png(tmp_path / "grey.png", grey, "L")
    img = read_image(tmp_path / "grey.png")
    assert img.rgb.shape == (10, 12, 3) and "greyscale" in img.note
    np.testing.assert_allclose(img.rgb[..., 1], grey / 255.0, atol=1e-6)

    rgba = random_uint8((10, 12, 4), seed=2)
    save_png(tmp_path / "rgba.png", rgba, "RGBA")
    img = read_image(tmp_path / "rgba.png")
    assert img.rgb.shape == (10, 12, 3) and img.alpha.shape == (10, 12) and "alpha" in img.note
    np.testing.assert_allclose(img.alpha, rgba[..., 3] / 255.0, atol=1e-6)

    from PIL import Image

    Image.fromarray(rgb).convert("P").save(tmp_path / "pal.png")
    assert read_image(tmp_path / "pal.png").rgb.shape == (10, 12, 3)


def test_unreadable_file_names_it(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageReadError, match="broken.png"):
        read_image(bad)
    with pytest.raises(ImageReadError, match="missing.png"):
        read_image(tmp_path / "missing.png")


# ---------------------------------------------------------------------------------------------- degradations
def test_bicubic_downsample_shape_and_error():
    hr = torch.rand(3, 32, 48)
    lr = bicubic_downsample(hr, 4)
    assert lr.shape == (3, 8, 12)
    # a constant image stays constant
    assert torch.allclose(bicubic_downsample(torch.full((3, 16, 16), 0.3), 2), torch.tensor(0.3), atol=1e-6)
    with pytest.raises(ValueError, match=r"photo.png: size 30x48 is not divisible by the scale 4"):
        bicubic_downsample(torch.rand(3, 30, 48), 4, name="photo.png")


def test_bicubic_matches_pillow():
    """Antialiased bicubic downsampling is Pillow's (Keys a = -0.5) up to rounding."""
    from PIL import Image

    arr = random_uint8((64, 64, 3), seed=3)
    ref = np.asarray(Image.fromarray(arr).resize((32, 32), Image.BICUBIC), dtype=np.float64) / 255
    ours = bicubic_downsample(torch.from_numpy(arr).permute(2, 0, 1).float() / 255, 2).permute(1, 2, 0).numpy()
    assert np.abs(ours - ref)[2:-2, 2:-2].max() < 3 / 255


def test_kernels_normalised():
    for k in (
        gaussian_kernel(21, 2.0, 1.0, 0.3),
        gaussian_kernel(15, 1.0, 1.0, 0, 2.0, "generalized"),
        gaussian_kernel(11, 1.5, 0.7, 1.0, 1.5, "plateau"),
        sinc_kernel(21, np.pi / 3),
    ):
        assert abs(k.sum() - 1) < 1e-9 and k.shape[0] % 2 == 1


def test_realesrgan_seeded_and_quantised():
    hr = torch.rand(3, 64, 64)
    deg = RealESRGANDegradation()
    a = deg(hr, 4, np.random.default_rng(7))
    b = deg(hr, 4, np.random.default_rng(7))
    c = deg(hr, 4, np.random.default_rng(8))
    assert a.shape == (3, 16, 16) and torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    assert torch.allclose(a * 255, (a * 255).round(), atol=1e-4)
    with pytest.raises(ValueError, match="not divisible"):
        deg(torch.rand(3, 62, 64), 4, np.random.default_rng(0))


# ---------------------------------------------------------------------------------------------- photos
def test_photo_split_is_fixed_and_disjoint():
    assert set(HELDOUT_PHOTOS) == {"coffee", "rocket", "retina_crop", "china"}
    assert not set(TRAIN_PHOTOS) & set(HELDOUT_PHOTOS)
    assert len(TRAIN_PHOTOS) >= 15


def test_photo_datamodule_batches():
    torch.manual_seed(0)
    dm = SRDataModule(scale=4, patch_size=32, batch_size=3, samples_per_epoch=6, eval_size=64)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["x0"].shape == (3, 3, 32, 32) and batch["y"].shape == (3, 3, 32, 32)
    assert batch["lr"].shape == (3, 3, 8, 8)
    assert float(batch["x0"].min()) >= -1 and float(batch["x0"].max()) <= 1
    val = next(iter(dm.val_dataloader()))
    assert val["x0"].shape == (4, 3, 64, 64)
    again = next(iter(SRDataModule(scale=4, eval_size=64).val_dataloader()))
    assert torch.equal(val["x0"], again["x0"]) and torch.equal(val["lr"], again["lr"])


def test_realesrgan_validation_is_deterministic():
    dm1 = SRDataModule(scale=4, degradation="realesrgan", eval_size=32, eval_batch_size=2)
    dm2 = SRDataModule(scale=4, degradation="realesrgan", eval_size=32, eval_batch_size=2)
    assert torch.equal(next(iter(dm1.val_dataloader()))["lr"], next(iter(dm2.val_dataloader()))["lr"])


def test_crop_larger_than_image_names_file():
    ds = DegradedImageDataset([("tiny.png", lambda: np.zeros((20, 40, 3), np.float32))], 4, patch_size=32)
    with pytest.raises(ValueError, match=r"tiny.png: image is 20x40, smaller than the crop size 32x32"):
        ds[0]


def test_hr_not_divisible_by_scale(tmp_path):
    src = [("odd.png", lambda: np.zeros((30, 41, 3), np.float32))]
    with pytest.raises(ValueError, match=r"odd.png: size 30x41 is not divisible by the scale 4"):
        DegradedImageDataset(src, 4, train=False)[0]
    item = DegradedImageDataset(src, 4, train=False, mod_crop=True)[0]
    assert item["x0"].shape == (3, 28, 40)


# ---------------------------------------------------------------------------------------------- paired folders
def _div2k(tmp_path, gt_size=(48, 64), lq_size=(12, 16), n=2):
    gt_dir, lq_dir = tmp_path / "DIV2K_train_HR", tmp_path / "DIV2K_train_LR_bicubic" / "X4"
    for i in range(n):
        save_png(gt_dir / f"{i + 1:04d}.png", random_uint8((*gt_size, 3), seed=i))
        save_png(lq_dir / f"{i + 1:04d}x4.png", random_uint8((*lq_size, 3), seed=10 + i))
    return gt_dir, lq_dir


def test_paired_div2k_layout(tmp_path):
    gt_dir, lq_dir = _div2k(tmp_path)
    ds = PairedFolderDataset(gt_dir, lq_dir, 4, "{}x4")
    item = ds[0]
    assert item["x0"].shape == (3, 48, 64) and item["lr"].shape == (3, 12, 16)
    torch.manual_seed(0)
    train = PairedFolderDataset(gt_dir, lq_dir, 4, "{}x4", patch_size=32, train=True)
    item = train[1]
    assert item["x0"].shape == (3, 32, 32) and item["lr"].shape == (3, 8, 8)


def test_paired_mismatch_and_missing(tmp_path):
    gt_dir, lq_dir = _div2k(tmp_path, gt_size=(48, 64), lq_size=(10, 16))
    with pytest.raises(ValueError, match=r"0001.png is 48x64 but LQ .*0001x4.png is 10x16"):
        PairedFolderDataset(gt_dir, lq_dir, 4, "{}x4")[0]
    with pytest.raises(ImageDataError, match=r"no LQ image named 0001"):
        PairedFolderDataset(gt_dir, lq_dir, 4, "{}")


def test_hr_folder_datamodule(tmp_path):
    for split in ("train", "val"):
        for i in range(2):
            save_png(tmp_path / split / f"{i}.png", random_uint8((40, 40, 3), seed=i))
        save_png(tmp_path / split / "grey.png", random_uint8((40, 40), seed=5), "L")
    dm = SRDataModule(
        source="hr_folder",
        scale=2,
        patch_size=16,
        batch_size=2,
        eval_size=None,
        train_gt=str(tmp_path / "train"),
        val_gt=str(tmp_path / "val"),
        samples_per_epoch=4,
    )
    assert next(iter(dm.train_dataloader()))["x0"].shape == (2, 3, 16, 16)
    assert next(iter(dm.val_dataloader()))["y"].shape == (3, 3, 40, 40)
    with pytest.raises(ValueError, match="needs train_gt and val_gt"):
        SRDataModule(source="hr_folder")
