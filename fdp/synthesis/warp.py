"""Dense image warps from per-vertex face-mesh displacements, for synthetic micro-expressions.

A displacement of the 468 mesh vertices becomes a dense field by piecewise-affine (barycentric) interpolation over
MediaPipe's 898-triangle tessellation; outside the mesh the field is zero, so the image away from the face stays
put. Every frame, micro-expression or not, goes through the same `warp_frame`, so resampling is never a cue.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MESH_VERTICES = 468  # the tessellation's vertices; the 10 iris points are not part of it


@dataclass(frozen=True)
class Similarity:
    """x' = scale · R · x + shift: how the canonical face sits on one detected face (2D or 3D)."""

    scale: float
    rotation: np.ndarray  # (d, d)
    shift: np.ndarray  # (d,)

    def apply(self, points: np.ndarray) -> np.ndarray:
        return self.scale * points @ self.rotation.T + self.shift

    def vectors(self, deltas: np.ndarray) -> np.ndarray:
        """Map displacements (no shift): canonical units to image pixels."""
        return self.scale * deltas @ self.rotation.T


def fit_similarity(source: np.ndarray, target: np.ndarray) -> Similarity:
    """Least-squares similarity (Umeyama, no reflection) taking `source` points onto `target` points, (N, d) each."""
    mu_s, mu_t = source.mean(0), target.mean(0)
    s, t = source - mu_s, target - mu_t
    u, sv, vt = np.linalg.svd(t.T @ s / len(source))
    d = np.eye(source.shape[1])
    d[-1, -1] = np.sign(np.linalg.det(u @ vt))
    rotation = u @ d @ vt
    scale = float(np.trace(np.diag(sv) @ d) / (s**2).sum(1).mean())
    return Similarity(scale, rotation, mu_t - scale * rotation @ mu_s)


@dataclass(frozen=True)
class MeshRaster:
    """Which triangle covers each pixel of the face's bounding box, with its barycentric weights.

    Built once per set of landmarks (a still, or one video frame) and reused for every displacement on it.
    """

    origin: tuple[int, int]  # (x0, y0) of the box in image pixels
    step: int  # grid spacing in image pixels: the field is piecewise linear, so large faces need no finer grid
    shape: tuple[int, int]  # (h, w) of the grid
    pixels: np.ndarray  # (P,) flat indices into the grid of the points the mesh covers
    corners: np.ndarray  # (P, 3) vertex ids of the covering triangle
    weights: np.ndarray  # (P, 3) float32 barycentric weights

    @classmethod
    def build(cls, points: np.ndarray, triangles: np.ndarray, step: int = 1) -> MeshRaster:
        """Rasterize the mesh (`points` in image pixels, `triangles` (F, 3)) over its bounding box, every `step` px."""
        mesh = points[:MESH_VERTICES].astype(np.float64)
        x0, y0 = np.floor(mesh.min(0)).astype(int) - step
        x1, y1 = np.ceil(mesh.max(0)).astype(int) + 2 * step
        grid_w, grid_h = (x1 - x0) // step + 1, (y1 - y0) // step + 1
        ids = np.full((grid_h, grid_w), -1, np.int32)
        local = np.round((mesh - (x0, y0)) / step * 16).astype(np.int32)  # 4 fractional bits: sub-pixel edges
        for index, triangle in enumerate(triangles):
            cv2.fillConvexPoly(ids, local[triangle], int(index), lineType=cv2.LINE_8, shift=4)
        pixels = np.flatnonzero(ids >= 0)
        corners = triangles[ids.ravel()[pixels]]
        ys, xs = np.divmod(pixels, grid_w)
        p = np.stack([xs * step + x0, ys * step + y0], 1).astype(np.float64)
        a, b, c = mesh[corners[:, 0]], mesh[corners[:, 1]], mesh[corners[:, 2]]
        e1, e2, r = b - a, c - a, p - a
        det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
        det = np.where(np.abs(det) < 1e-9, 1e-9, det)  # degenerate (edge-on) triangles: weights stay finite
        w1 = (r[:, 0] * e2[:, 1] - r[:, 1] * e2[:, 0]) / det
        w2 = (e1[:, 0] * r[:, 1] - e1[:, 1] * r[:, 0]) / det
        weights = np.clip(np.stack([1.0 - w1 - w2, w1, w2], 1), -0.5, 1.5).astype(np.float32)
        return cls((int(x0), int(y0)), step, ids.shape, pixels, corners, weights)

    def dense(self, delta: np.ndarray) -> np.ndarray:
        """(h, w, 2) float32 field on the grid from per-vertex displacements `delta` (>= 468, 2), zero off-mesh."""
        field = np.zeros((self.shape[0] * self.shape[1], 2), np.float32)
        d = delta[:MESH_VERTICES].astype(np.float32)
        w, c = self.weights, self.corners
        field[self.pixels] = w[:, :1] * d[c[:, 0]] + w[:, 1:2] * d[c[:, 1]] + w[:, 2:] * d[c[:, 2]]
        return field.reshape(self.shape[0], self.shape[1], 2)

    def sample(self, field: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Bilinear look-up of a `dense` field at image points (x, y); zero outside the grid."""
        fx = ((x - self.origin[0]) / self.step).astype(np.float32)
        fy = ((y - self.origin[1]) / self.step).astype(np.float32)
        return cv2.remap(field, fx, fy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))

    def box(self) -> tuple[float, float, float, float]:
        """x0, y0, x1, y1 of the grid in image pixels."""
        x0, y0 = self.origin
        return x0, y0, x0 + (self.shape[1] - 1) * self.step, y0 + (self.shape[0] - 1) * self.step


def clamp_apertures(points: np.ndarray, delta: np.ndarray, pairs: tuple[tuple[int, int], ...],
                    down: np.ndarray, fraction: float) -> np.ndarray:
    """Limit how far each (upper, lower) pair closes to `fraction` of its own gap; never let lids or lips cross.

    The excess closing is taken off both points equally, so a pair that would cross moves together instead.
    """
    out = delta.copy()
    upper, lower = np.array(pairs).T
    gap = np.maximum((points[lower] - points[upper]) @ down, 0.0)
    closing = (delta[upper] - delta[lower]) @ down
    excess = np.maximum(closing - fraction * gap, 0.0)
    out[upper] -= 0.5 * excess[:, None] * down
    out[lower] += 0.5 * excess[:, None] * down
    return out


def warp_frame(image: np.ndarray, out_to_source: np.ndarray, out_size: int, raster: MeshRaster,
               delta: np.ndarray) -> np.ndarray:
    """Render one output frame: the face moved by `delta` (per vertex, source pixels), seen through a global map.

    `out_to_source` (2, 3) takes output pixels to source pixels (crop, augmentation, head drift). The face
    displacement D is forward (a source point p moves to p + D(p)); the backward look-up solves q = p + D(p) by two
    fixed-point steps, p = q - D(q - D(q)), exact to second order for the few-pixel, smooth fields used here.
    """
    grid = np.arange(out_size, dtype=np.float32)
    gx, gy = np.meshgrid(grid, grid)
    m = out_to_source.astype(np.float64)
    qx = (m[0, 0] * gx + m[0, 1] * gy + m[0, 2]).astype(np.float32)
    qy = (m[1, 0] * gx + m[1, 1] * gy + m[1, 2]).astype(np.float32)
    field = raster.dense(delta)
    # the field is zero off the face: look it up only where q can reach it (the box grown by the largest motion)
    reach = float(np.abs(delta[:MESH_VERTICES]).max()) + 2.0
    x0, y0, x1, y1 = raster.box()
    corners = np.array([[x0 - reach, y0 - reach], [x1 + reach, y0 - reach], [x0 - reach, y1 + reach],
                        [x1 + reach, y1 + reach]])
    back = np.linalg.inv(np.r_[m, [[0.0, 0.0, 1.0]]])[:2]
    out = corners @ back[:, :2].T + back[:, 2]
    c0, r0 = np.clip(np.floor(out.min(0)).astype(int), 0, out_size)
    c1, r1 = np.clip(np.ceil(out.max(0)).astype(int) + 1, 0, out_size)
    if c1 > c0 and r1 > r0:
        sx, sy = qx[r0:r1, c0:c1], qy[r0:r1, c0:c1]
        first = raster.sample(field, sx, sy)
        second = raster.sample(field, sx - first[..., 0], sy - first[..., 1])
        qx[r0:r1, c0:c1] -= second[..., 0]
        qy[r0:r1, c0:c1] -= second[..., 1]
    return cv2.remap(image, qx, qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
