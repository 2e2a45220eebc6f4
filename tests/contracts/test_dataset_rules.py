"""The dataset rules on their own (edgeprune.contracts.dataset_rules): member names and
limits, the ImageFolder layout, the split, `.npz` shapes and labels."""

from __future__ import annotations

import io
import zipfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeprune.contracts.dataset_rules import (
    RATIO_FLOOR_BYTES,
    ArchiveLimits,
    ArrayFacts,
    DatasetRuleError,
    FolderListing,
    MemberScan,
    check_classes,
    class_labels,
    dataset_format,
    held_out_counts,
    image_folder_layout,
    member_parts,
    npz_layout,
)


@pytest.mark.parametrize(
    ("filename", "fmt"),
    [("a.NPZ", "npz"), ("a.zip", "zip"), ("a.tar.gz", "tar.gz"), ("a.tgz", "tar.gz"),
     ("a.tar", "tar"), ("a.csv", None), ("npz", None)],
)  # fmt: skip
def test_formats_by_name(filename: str, fmt: str | None) -> None:
    assert dataset_format(filename) == fmt


@pytest.mark.parametrize(
    ("name", "parts"),
    [("cat/0.png", ("cat", "0.png")), ("./cat//0.png", ("cat", "0.png")),
     ("pets\\cat\\0.png", ("pets", "cat", "0.png")), ("./", ()), ("a..b/c", ("a..b", "c"))],
)  # fmt: skip
def test_member_names(name: str, parts: tuple[str, ...]) -> None:
    assert member_parts(name) == parts


@pytest.mark.parametrize(
    ("name", "reason"),
    [("/etc/passwd", "absolute"), ("\\x\\y", "absolute"), ("C:/x", "absolute"),
     ("ab:c/x", "absolute"), ("../x", "outside"), ("a/../../x", "outside"),
     ("a\\..\\x", "outside")],
)  # fmt: skip
def test_member_names_that_leave_the_archive(name: str, reason: str) -> None:
    with pytest.raises(DatasetRuleError, match=reason):
        member_parts(name)


def _zip_infos(members: dict[str, bytes]) -> list[zipfile.ZipInfo]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with zipfile.ZipFile(buffer) as zf:
        return zf.infolist()


def test_the_scan_counts_members_and_declared_bytes() -> None:
    infos = _zip_infos({"a/0.png": b"x" * 60, "a/1.png": b"x" * 60})
    scan = MemberScan(10**6, ArchiveLimits(members=1))
    assert scan.add_zip(infos[0]) == ("a", "0.png")
    with pytest.raises(DatasetRuleError, match=r"more than 1 members.*MAX_DATASET_FILES"):
        scan.add_zip(infos[1])
    scan = MemberScan(10**6, ArchiveLimits(expanded_bytes=100))
    scan.add_zip(infos[0])
    with pytest.raises(DatasetRuleError, match=r"more than 100 bytes.*MAX_DATASET_BYTES"):
        scan.add_zip(infos[1])


def test_the_ratio_is_checked_above_the_floor_only() -> None:
    (small,) = _zip_infos({"a/0.png": bytes(1000)})
    MemberScan(1).add_zip(small)  # 1000x, but tiny: harmless
    (big,) = _zip_infos({"a/0.png": bytes(RATIO_FLOOR_BYTES + 1)})
    with pytest.raises(DatasetRuleError, match="archive bomb"):
        MemberScan(1000).add_zip(big)
    MemberScan(RATIO_FLOOR_BYTES // 100).add_zip(big)  # 100x: an ordinary archive


def test_links_and_special_files_are_refused() -> None:
    link = zipfile.ZipInfo("cat/0.png")
    link.external_attr = 0o120777 << 16
    with pytest.raises(DatasetRuleError, match="is a link"):
        MemberScan(100).add_zip(link)
    fifo = zipfile.ZipInfo("cat/0.png")
    fifo.external_attr = 0o010644 << 16
    with pytest.raises(DatasetRuleError, match="not a file or folder"):
        MemberScan(100).add_zip(fifo)


def _listing(*paths: str) -> FolderListing:
    listing = FolderListing()
    for path in paths:
        parts = tuple(p for p in path.split("/") if p)
        (listing.add_folder if path.endswith("/") else listing.add_file)(parts)
    return listing


def test_a_name_used_twice_or_as_file_and_folder_is_refused() -> None:
    with pytest.raises(DatasetRuleError, match="there twice"):
        _listing("cat/0.png", "cat/0.png")
    with pytest.raises(DatasetRuleError, match="both a file and a folder"):
        _listing("cat", "cat/0.png")
    with pytest.raises(DatasetRuleError, match="a folder too"):
        _listing("cat/0.png/", "cat/0.png")
    _listing("cat/", "cat/", "cat/0.png")  # a folder entry twice is harmless


def test_layout_steps_into_wrappers_but_not_into_splits() -> None:
    layout = image_folder_layout(
        _listing("a/b/cat/0.png", "a/b/dog/0.png", "a/.DS_Store", "__MACOSX/a/b/cat/._0.png")
    )
    assert layout.classes == ["cat", "dog"] and layout.test is None
    assert layout.train == [(0, ("a", "b", "cat", "0.png")), (1, ("a", "b", "dog", "0.png"))]
    layout = image_folder_layout(_listing("train/cat/0.png", "train/dog/0.png"))
    assert layout.classes == ["cat", "dog"] and layout.test is None


def test_layout_reads_test_else_val_beside_train() -> None:
    layout = image_folder_layout(
        _listing("train/cat/1.png", "train/cat/0.png", "train/dog/0.png", "val/dog/5.png",
                 "test/cat/9.png", "notes.txt")
    )  # fmt: skip
    assert layout.train == [
        (0, ("train", "cat", "0.png")), (0, ("train", "cat", "1.png")),
        (1, ("train", "dog", "0.png")),
    ]  # fmt: skip
    assert layout.test == [(0, ("test", "cat", "9.png"))]
    assert layout.train_counts() == [2, 1]
    layout = image_folder_layout(_listing("train/cat/0.png", "train/dog/0.png", "val/dog/5.png"))
    assert layout.test == [(1, ("val", "dog", "5.png"))]


@pytest.mark.parametrize(
    ("paths", "reason"),
    [(("README.md",), "no class folders"),
     (("cat/", "dog/.DS_Store"), "no images found"),
     (("cat/0.png", "dog/notes.txt"), "'dog/notes.txt' in a class folder is not an image"),
     (("train/cat/0.png", "test/cat/"), "the test/ folder holds no images"),
     (("train/cat/0.png", "test/bird/0.png"), "test class(es) bird have no training sample")],
)  # fmt: skip
def test_layout_refusals(paths: tuple[str, ...], reason: str) -> None:
    with pytest.raises(DatasetRuleError) as refused:
        image_folder_layout(_listing(*paths))
    assert reason in str(refused.value)


def test_held_out_counts() -> None:
    assert held_out_counts([10, 5, 1], 0.2) == [2, 1, 0]
    assert held_out_counts([2, 1], 0.2) == [1, 0]  # none by rounding: one of the largest
    assert held_out_counts([1, 3, 3], 0.1) == [0, 1, 0]  # the first largest
    with pytest.raises(DatasetRuleError, match=r"too few samples .*\(2 samples\)"):
        held_out_counts([1, 1], 0.2)


@given(st.lists(st.integers(0, 50), min_size=1, max_size=8), st.floats(0.01, 0.99))
def test_held_out_counts_keep_a_training_sample_of_every_class(
    counts: list[int], fraction: float
) -> None:
    if max(counts) < 2:
        with pytest.raises(DatasetRuleError):
            held_out_counts(counts, fraction)
        return
    held = held_out_counts(counts, fraction)
    assert sum(held) >= 1
    assert all(0 <= h < max(n, 1) for h, n in zip(held, counts, strict=True))


@pytest.mark.parametrize(
    ("classes", "counts", "test", "reason"),
    [(["a"], [5], None, "found 1 class"),
     (["a", "b", "c"], [3, 0, 2], 4, "class(es) b have no training sample"),
     (["a", "b"], [1, 1], None, "too few samples"),
     (["a", "b"], [1, 1], 0, "the test split is empty")],
)  # fmt: skip
def test_class_refusals(
    classes: list[str], counts: list[int], test: int | None, reason: str
) -> None:
    with pytest.raises(DatasetRuleError) as refused:
        check_classes(classes, counts, test)
    assert reason in str(refused.value)
    check_classes(["a", "b"], [1, 1], 2)  # a given test split needs no hold-out


def _facts(shape: tuple[int, ...], kind: str = "f") -> ArrayFacts:
    return ArrayFacts(shape, kind, {"f": "float32", "u": "uint8", "i": "int64"}.get(kind, kind))


@pytest.mark.parametrize(
    ("shape", "axes", "sample"),
    [((5, 8, 9), "NHW", (1, 8, 9)), ((5, 8, 9, 3), "NHWC", (3, 8, 9)),
     ((5, 3, 8, 9), "NCHW", (3, 8, 9)), ((5, 3, 8, 1), "NCHW", (3, 8, 1)),
     ((5, 7, 8, 9), "NCHW", (7, 8, 9))],
)  # fmt: skip
def test_npz_image_axes(shape: tuple[int, ...], axes: str, sample: tuple[int, int, int]) -> None:
    layout = npz_layout({"x": _facts(shape), "y": _facts((5,), "i")})
    assert (layout.x.axes, layout.x.sample_shape) == (axes, sample)


@pytest.mark.parametrize(
    ("arrays", "reason"),
    [({"x": _facts((4, 2, 2))}, "has no y array"),
     ({"x": _facts((4, 2, 2)), "y": _facts((4,), "i"), "y_test": _facts((1,), "i")}, "together"),
     ({"x": _facts((4, 2, 2), "b"), "y": _facts((4,), "i")}, "must hold numbers"),
     ({"x": _facts((4, 2)), "y": _facts((4,), "i")}, "must be (N, C, H, W)"),
     ({"x": _facts((4, 0, 2)), "y": _facts((4,), "i")}, "x is empty"),
     ({"x": _facts((4, 2, 2)), "y": _facts((4, 1), "i")}, "one label per sample"),
     ({"x": _facts((4, 2, 2)), "y": _facts((4,), "U")}, "integer class labels"),
     ({"x": _facts((4, 2, 2)), "y": _facts((3,), "i")}, "x has 4 samples but y has 3"),
     ({"x": _facts((4, 2, 2)), "y": _facts((4,), "i"), "x_test": _facts((1, 3, 2, 2)),
       "y_test": _facts((1,), "i")}, "train has 1 channel(s) but test has 3")],
)  # fmt: skip
def test_npz_refusals(arrays: dict[str, ArrayFacts], reason: str) -> None:
    with pytest.raises(DatasetRuleError) as refused:
        npz_layout(arrays)
    assert reason in str(refused.value)


def test_class_labels() -> None:
    assert class_labels([-1, 0.0, 7.0], "y", "float64") == [-1, 0, 7]
    for bad in (0.5, float("nan"), float("inf"), 1e20):
        with pytest.raises(DatasetRuleError, match="y must hold integer class labels"):
            class_labels([0, bad], "y", "float64")
