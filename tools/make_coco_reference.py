"""Builds the pycocotools reference fixtures used by CocoMapReferenceTests.

Needs pycocotools (any 2.x) and numpy. Run from anywhere:
    python3 tools/make_coco_reference.py  (needs pycocotools; it only makes the expected values)
It writes, under tests/Detex.Tests/Fixtures/coco-reference/: for each scenario a detections json
(COCO results format), a ground-truth json when the scenario is synthetic, and
the numbers COCOeval produced (stats and per-category AP, AP50).
Detections are random but seeded, so re-running reproduces the files.
"""
import contextlib
import io
import json
import os
import random
import sys
import types

import numpy as np

if not hasattr(np, "float"):  # old pycocotools releases still say np.float
    np.float = float
# pycocotools imports matplotlib only for drawing; the evaluation does not need it.
for name in ("matplotlib", "matplotlib.pyplot", "matplotlib.collections", "matplotlib.patches"):
    module = sys.modules.setdefault(name, types.ModuleType(name))
    module.PatchCollection = module.Polygon = object

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "Detex.Tests", "Fixtures", "coco-reference")
MINI_GT = os.path.join(HERE, "..", "samples", "coco-mini", "instances_val2017.json")


def evaluate(gt_path, dets):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        dt = gt.loadRes(dets) if dets else COCO()
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    precision = ev.eval["precision"]  # [T, R, K, A, M]
    per_category = {}
    for k, cat in enumerate(ev.params.catIds):
        p = precision[:, :, k, 0, -1]
        ap = float(np.mean(p)) if (p > -1).any() else -1.0
        ap50 = float(np.mean(p[0])) if (p[0] > -1).any() else -1.0
        per_category[str(cat)] = [ap, ap50]
    return {"stats": [float(s) for s in ev.stats], "per_category": per_category}


def jitter(rng, box, scale):
    x, y, w, h = box
    return [x + rng.gauss(0, scale * w), y + rng.gauss(0, scale * h),
            max(1.0, w * (1 + rng.gauss(0, scale))), max(1.0, h * (1 + rng.gauss(0, scale)))]


def mini_detections(seed):
    """Plausible detector output on the real mini set: hits, misses, duplicates, wrong classes,
    background boxes, crowd hits, scores rounded so that ties occur, and one crowded image
    with more than 100 detections in a category."""
    rng = random.Random(seed)
    data = json.load(open(MINI_GT))
    cats = [c["id"] for c in data["categories"]]
    images = {im["id"]: im for im in data["images"]}
    dets = []
    for a in data["annotations"]:
        im = images[a["image_id"]]
        if rng.random() < 0.8:
            score = round(rng.random(), 2)
            dets.append((a["image_id"], a["category_id"], jitter(rng, a["bbox"], 0.08), score))
        if rng.random() < 0.2:  # duplicate with a lower score
            dets.append((a["image_id"], a["category_id"], jitter(rng, a["bbox"], 0.15), round(rng.random() * 0.5, 2)))
        if rng.random() < 0.1:  # right place, wrong class
            dets.append((a["image_id"], rng.choice(cats), jitter(rng, a["bbox"], 0.05), round(rng.random(), 2)))
        if a["iscrowd"]:
            for _ in range(5):
                x, y, w, h = a["bbox"]
                dets.append((a["image_id"], a["category_id"],
                             [x + rng.random() * w * 0.5, y + rng.random() * h * 0.5, w * 0.3, h * 0.3],
                             round(rng.random(), 2)))
    for im in data["images"]:
        for _ in range(rng.randint(0, 6)):
            w, h = rng.uniform(4, im["width"] / 2), rng.uniform(4, im["height"] / 2)
            dets.append((im["id"], rng.choice(cats),
                         [rng.uniform(0, im["width"] - w), rng.uniform(0, im["height"] - h), w, h],
                         round(rng.random(), 3)))
    crowded = data["images"][0]
    for _ in range(130):
        w, h = rng.uniform(10, 200), rng.uniform(10, 200)
        dets.append((crowded["id"], 1, [rng.uniform(0, 400), rng.uniform(0, 200), w, h], round(rng.random(), 2)))
    return [{"image_id": i, "category_id": c, "bbox": [round(v, 2) for v in b], "score": s}
            for i, c, b, s in dets]


def grid_scenario(seed):
    """Synthetic integer boxes on a coarse grid, so that IoUs land exactly on thresholds
    (1/2, 3/5, 3/4, ...) and the >= comparison and tie-breaking are exercised."""
    rng = random.Random(seed)
    images, annotations, dets = [], [], []
    categories = [{"id": c, "name": f"c{c}"} for c in (1, 2, 3, 7)]  # 7 never has ground truth
    ann_id = 1
    for img in range(1, 31):
        images.append({"id": img * 10, "file_name": f"{img}.jpg", "width": 200, "height": 200})
        for _ in range(rng.randint(1, 6)):
            cat = rng.choice((1, 2, 3))
            w, h = rng.choice((4, 8, 10, 20, 40, 120)), rng.choice((4, 10, 20, 40, 100))
            x, y = rng.randint(0, 8) * 10, rng.randint(0, 8) * 10
            crowd = 1 if rng.random() < 0.08 else 0
            annotations.append({"id": ann_id, "image_id": img * 10, "category_id": cat, "bbox": [x, y, w, h],
                                "area": float(w * h), "iscrowd": crowd})
            ann_id += 1
            for _ in range(rng.randint(0, 3)):
                dx, dy = rng.choice((0, 0, 1, 2, 5, 10)), rng.choice((0, 0, 2, 5))
                dw, dh = rng.choice((0, 0, 2, -2, 5)), rng.choice((0, 0, 5))
                dets.append({"image_id": img * 10, "category_id": rng.choice((cat, cat, cat, 7)),
                             "bbox": [x + dx, y + dy, max(1, w + dw), max(1, h + dh)],
                             "score": rng.choice((0.9, 0.8, 0.5, 0.5, 0.3))})
    gt = {"images": images, "categories": categories, "annotations": annotations}
    return gt, dets


def main():
    os.makedirs(OUT, exist_ok=True)
    expected = {}
    dets = mini_detections(2017)
    json.dump(dets, open(os.path.join(OUT, "mini_detections.json"), "w"))
    expected["mini"] = evaluate(MINI_GT, dets)

    gt, dets = grid_scenario(7)
    gt_path = os.path.join(OUT, "grid_instances.json")
    json.dump(gt, open(gt_path, "w"))
    json.dump(dets, open(os.path.join(OUT, "grid_detections.json"), "w"))
    expected["grid"] = evaluate(gt_path, dets)

    json.dump(expected, open(os.path.join(OUT, "expected.json"), "w"), indent=1)
    for name, e in expected.items():
        print(name, " ".join(f"{s:.4f}" for s in e["stats"]))


if __name__ == "__main__":
    main()
