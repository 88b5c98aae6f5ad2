"""Draw a frame's results for previews: each face's box, label and an inset of its window's dynamic image.

Always on a copy: the capture thread hands its own array over, read-only.
"""

from __future__ import annotations

import cv2
import numpy as np

from realtime.frames import Prediction

ACTIVE_BGR = (0, 0, 255)
QUIET_BGR = (80, 200, 80)
INSET_PX = 72


def dynamic_image_to_gray(dynamic_image: np.ndarray) -> np.ndarray:
    """A dynamic image as uint8 gray: no change is mid-gray, brighter/darker where the face brightened/darkened."""
    image = dynamic_image.mean(axis=-1) if dynamic_image.ndim == 3 else dynamic_image
    scale = float(np.abs(image).max())
    return np.clip(128 + image * (127 / scale if scale > 1e-6 else 0.0), 0, 255).astype(np.uint8)


def annotate(image: np.ndarray, boxes: dict[int, tuple[float, float, float, float]],
             predictions: dict[int, Prediction], dynamic_images: dict[int, np.ndarray], note: str) -> np.ndarray:
    """A copy of `image` with each tracked face's box, latest prediction and dynamic-image inset, and `note`."""
    canvas = image.copy()
    height, width = canvas.shape[:2]
    for face_id, box in boxes.items():
        prediction = predictions.get(face_id)
        color = ACTIVE_BGR if prediction is not None and prediction.me_active else QUIET_BGR
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), color, 2)
        text = f"#{face_id}" if prediction is None else \
            f"#{face_id} {prediction.label} {prediction.probs[prediction.label]:.2f}"
        cv2.putText(canvas, text, (x0, max(12, y0 - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1, cv2.LINE_AA)
        if face_id in dynamic_images:
            inset = cv2.resize(dynamic_image_to_gray(dynamic_images[face_id]), (INSET_PX, INSET_PX),
                               interpolation=cv2.INTER_NEAREST)
            left = min(max(0, x1 + 4), width - INSET_PX)
            top = min(max(0, y0), height - INSET_PX)
            if left >= 0 and top >= 0:
                canvas[top:top + INSET_PX, left:left + INSET_PX] = inset[..., None]
                cv2.rectangle(canvas, (left, top), (left + INSET_PX - 1, top + INSET_PX - 1), color, 1)
    cv2.putText(canvas, note, (6, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas
