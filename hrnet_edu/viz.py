"""Drawing helpers: keypoints and skeletons over images (matplotlib; figures returned, never shown)."""

from __future__ import annotations

import numpy as np

from .keypoints import KEYPOINT_COLORS, LIMB_COLORS, SKELETON


def draw_pose(ax, keypoints, visible=None, *, radius=3.0, linewidth=2.0, alpha=1.0):
    """Draw one person's keypoints and skeleton on a matplotlib axis.

    Args:
        ax: a matplotlib Axes (already showing the image, if any).
        keypoints: (K, 2) pixel coordinates (x, y), or (K, 3) with visibility/confidence last.
        visible: (K,) > 0 where the joint is drawn; default: all (or column 3 of keypoints).
        radius, linewidth, alpha: marker radius (points), limb width, opacity.

    Returns:
        The axis, for chaining.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 2 or kp.shape[1] not in (2, 3):
        raise ValueError(f"keypoints must have shape (K, 2) or (K, 3), got {kp.shape}")
    if visible is None:
        visible = kp[:, 2] if kp.shape[1] == 3 else np.ones(len(kp))
    vis = np.asarray(visible) > 0
    for (a, b), color in zip(SKELETON, LIMB_COLORS):
        if a < len(kp) and b < len(kp) and vis[a] and vis[b]:
            ax.plot(kp[[a, b], 0], kp[[a, b], 1], color=color, linewidth=linewidth, alpha=alpha)
    colors = np.array(KEYPOINT_COLORS[: len(kp)])
    ax.scatter(kp[vis, 0], kp[vis, 1], s=radius**2 * 4, c=colors[vis], edgecolors="white",
               linewidths=0.5, alpha=alpha, zorder=3)
    return ax
