"""Faces, masks, pose, matting, compositing, safe image loading. RGB everywhere."""
