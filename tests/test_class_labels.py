"""Class labels come from the class NAMES (folder names, CSV synsets) matched against the model's
classes, so a folder holding a subset of the classes is scored with each image's true label."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from engine_fakes import fake_job, reference_bits
from visbpp.core.engine.data import DataError, scan
from visbpp.core.engine.runner import RunSettings, run
from visbpp.core.errors import ConfigError
from visbpp.core.registry.class_names import DIGITS, imagenet_synsets

# three synsets and their standard ImageNet-1k class indices (goldfish, Chihuahua, toilet tissue)
SYNSETS = {"n01443537": 1, "n02085620": 151, "n15075141": 999}


def _images(folder, n, seed):
    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = []
    for i in range(n):
        name = f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (9, 9, 3), dtype=np.uint8)).save(os.path.join(folder, name))
        names.append(name)
    return names


def _settings(tmp_path, data, **kw):
    return RunSettings(data=str(data), device="cpu", batch_size=2, cache_dir=str(tmp_path / "cache"), **kw)


def test_shipped_synsets_are_the_standard_imagenet_order():
    syn = imagenet_synsets()
    assert len(syn) == 1000 and syn[0] == "n01440764" and list(syn) == sorted(syn)
    assert all(syn[i] == s for s, i in SYNSETS.items())


def test_three_synset_imagefolder_scored_with_the_true_imagenet_labels(tmp_path):
    data = tmp_path / "data"
    for k, s in enumerate(SYNSETS):
        _images(data / s, 2, k)
    res = run([fake_job("fake-in", 0, class_names=imagenet_synsets())], _settings(tmp_path, data))
    assert not res.cancelled and len(res.per_image) == 6
    for r in res.per_image:
        want = SYNSETS[r["image"].split("/")[0]]
        assert r["label"] == want
        assert r["bits"] == pytest.approx(reference_bits(str(data / r["image"]), want, num_classes=1000), abs=1e-9)


def test_flat_csv_of_three_synsets_labelled_by_synset(tmp_path):
    data = tmp_path / "flat"
    names = _images(data, 3, 5)
    rows = [f"{os.path.splitext(n)[0]},{s} 1 2 3 4" for n, s in zip(names, SYNSETS)]
    (tmp_path / "labels.csv").write_text("ImageId,PredictionString\n" + "\n".join(rows) + "\n")
    ds = scan(str(data), str(tmp_path / "labels.csv"), imagenet_synsets())
    assert sorted(s.label for s in ds.samples) == sorted(SYNSETS.values())
    assert ds.relabelled


def test_a_folder_that_is_no_class_is_an_error_naming_it(tmp_path):
    data = tmp_path / "data"
    _images(data / "n01443537", 1, 0)
    _images(data / "cats", 1, 1)
    with pytest.raises(DataError, match="'cats'.*1000 ImageNet synset ids"):
        scan(str(data), None, imagenet_synsets())
    with pytest.raises(DataError, match="class folder 'cats'"):
        run([fake_job("fake-in", 0, class_names=imagenet_synsets())], _settings(tmp_path, data))


def test_full_ordered_set_keeps_the_index_order_and_the_run_id(tmp_path):
    data = tmp_path / "digits"
    for d in DIGITS:
        _images(data / d, 1, int(d))
    named = scan(str(data), None, DIGITS)
    plain = scan(str(data), None, None)
    assert [s.label for s in named.samples] == [s.label for s in plain.samples] == list(range(10))
    assert not named.relabelled


def test_models_of_different_classes_are_not_run_together(tmp_path):
    data = tmp_path / "data"
    _images(data / "3", 1, 0)
    jobs = [fake_job("fake-digits", 0, "t1", DIGITS), fake_job("fake-in", 0, "t2", imagenet_synsets())]
    with pytest.raises(ConfigError, match="different classes.*fake-digits.*fake-in"):
        run(jobs, _settings(tmp_path, data))


def test_micro_digit_subset_scores_like_the_same_images_with_true_labels(tmp_path, monkeypatch):
    """micro-s on a folder holding only the digits 3 4 5: the bits of each image equal those of the
    same image in a folder of all ten digit folders (whose index order is the true label)."""
    from visbpp.models.jobs import job_for_card
    from visbpp.models.micro.data import write_imagefolder

    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    held = write_imagefolder(tmp_path / "held")
    sub, full = tmp_path / "sub", tmp_path / "full"
    for d in DIGITS:
        (full / d).mkdir(parents=True)
    for d in ("3", "4", "5"):
        (sub / d).mkdir(parents=True)
        for name in sorted(os.listdir(held / d))[:3]:
            shutil.copy(held / d / name, sub / d / name)
            shutil.copy(held / d / name, full / d / name)
    job = job_for_card("micro-s")
    assert job.class_names == DIGITS
    got = {r["image"]: r for r in run([job], _settings(tmp_path, sub)).per_image}
    want = {r["image"]: r for r in run([job], _settings(tmp_path, full)).per_image}
    assert set(got) == set(want) and len(got) == 9
    for image, r in got.items():
        assert r["label"] == int(image.split("/")[0]) == want[image]["label"]
        assert r["bits"] == pytest.approx(want[image]["bits"], rel=1e-9)
