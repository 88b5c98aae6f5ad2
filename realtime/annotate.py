"""Draw a frame's results (face boxes, labels, the spotting state) for previews; never on the capture's array."""

from __future__ import annotations

import cv2
import numpy as np

from realtime.frames import Prediction

ACTIVE_BGR = (0, 0, 255)
QUIET_BGR = (80, 200, 80)


def annotate(image: np.ndarray, boxes: dict[int, tuple[float, float, float, float]],
             predictions: dict[int, Prediction], note: str) -> np.ndarray:
    """A copy of `image` with each tracked face's box and its latest prediction, and `note` along the bottom."""
    canvas = image.copy()
    for face_id, box in boxes.items():
        prediction = predictions.get(face_id)
        color = ACTIVE_BGR if prediction is not None and prediction.me_active else QUIET_BGR
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), color, 2)
        text = f"#{face_id}" if prediction is None else \
            f"#{face_id} {prediction.label} {prediction.probs[prediction.label]:.2f}"
        cv2.putText(canvas, text, (x0, max(12, y0 - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1, cv2.LINE_AA)
    height = canvas.shape[0]
    cv2.putText(canvas, note, (6, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas
