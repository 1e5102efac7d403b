"""A model contract carried out: camera images -> the model's input tensor, outputs -> (v, w).

``InputPipeline`` applies an ``InputSpec`` step by step (crop, resize, colour order, scale, mean
and std, quantization, layout, frame history) and knows the shape it produces; ``decode`` picks
the speed and the yaw rate out of a model's outputs and puts them in m/s and rad/s. Steps that do
nothing (no crop, zero mean, unit std) are skipped, so simeval's own models get exactly the values
``simeval.agents.pilotnet.preprocess`` gives.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import NDArray

from simeval.agents.contract import InputSpec, OutputChannel, OutputSpec
from simeval.agents.formats import TensorInfo
from simeval.errors import ContractError
from simeval.sim.camera import CameraConfig

CV2_INTERPOLATIONS = {"linear": "INTER_LINEAR", "area": "INTER_AREA", "nearest": "INTER_NEAREST", "cubic": "INTER_CUBIC"}


def camera_for(spec: InputSpec) -> CameraConfig:
    """The camera whose image the input starts from: the env's frame, or the whole sensor image."""
    return CameraConfig.sensor() if spec.image == "sensor" else CameraConfig()


class InputPipeline:
    """Images (n, H, W, 3) RGB uint8 from ``camera_for(spec)`` -> the model's input tensor."""

    def __init__(self, spec: InputSpec, quantization: tuple[float, int] | None = None):
        self.spec = spec
        self.quantization = spec.quantization or quantization
        if spec.dtype != "float32" and self.quantization is None:
            raise ContractError(f"a {spec.dtype} input needs [input] quantization = [scale, zero_point] (the model does not give one)")
        camera = camera_for(spec)
        self.image_shape = (camera.height_px, camera.width_px)
        self._history: deque[NDArray[np.uint8]] = deque(maxlen=(spec.history - 1) * spec.history_stride + 1)

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of one prepared frame, before the layout."""
        height, width = self.image_shape
        if self.spec.crop_rows is not None:
            height = min(self.spec.crop_rows[1], height) - self.spec.crop_rows[0]
        if self.spec.crop_cols is not None:
            width = min(self.spec.crop_cols[1], width) - self.spec.crop_cols[0]
        if self.spec.resize is not None:
            width, height = self.spec.resize
        return height, width, 3

    @property
    def shape(self) -> tuple[int, int, int]:
        """The input tensor's shape without the batch: channels multiplied by the history."""
        height, width, channels = self.frame_shape
        channels *= self.spec.history
        return (channels, height, width) if self.spec.layout == "NCHW" else (height, width, channels)

    def prepare(self, images: NDArray[np.uint8]) -> NDArray:
        """Each image alone (no history) as the model takes it: (n, *frame layout)."""
        x = np.asarray(images)
        if x.ndim != 4 or x.shape[1:3] != self.image_shape or x.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (n, {self.image_shape[0]}, {self.image_shape[1]}, 3), got {x.dtype} {x.shape}")
        x = self._geometry(x)
        if self.spec.colour == "BGR":
            x = x[..., ::-1]
        x = self._values(x)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if self.spec.layout == "NCHW" else x

    def _geometry(self, x: NDArray[np.uint8]) -> NDArray[np.uint8]:
        spec = self.spec
        if spec.crop_rows is not None:
            x = x[:, spec.crop_rows[0] : spec.crop_rows[1]]
        if spec.crop_cols is not None:
            x = x[:, :, spec.crop_cols[0] : spec.crop_cols[1]]
        if spec.resize is not None and x.shape[1:3] != (spec.resize[1], spec.resize[0]):
            import cv2

            flag = getattr(cv2, CV2_INTERPOLATIONS[spec.interpolation])
            x = np.stack([cv2.resize(np.ascontiguousarray(image), tuple(spec.resize), interpolation=flag) for image in x])
        return x

    def _values(self, x: NDArray[np.uint8]) -> NDArray:
        spec = self.spec
        values = x.astype(np.float32)
        values *= np.float32(spec.scale)
        if not spec.identity_normalisation:
            values -= np.asarray(spec.mean, dtype=np.float32)
            values /= np.asarray(spec.std, dtype=np.float32)
        if spec.dtype == "float32":
            return values
        scale, zero_point = self.quantization
        info = np.iinfo(spec.dtype)
        return np.clip(np.rint(values / np.float32(scale)) + zero_point, info.min, info.max).astype(spec.dtype)

    # ------------------------------------------------------------------------------ history
    def reset(self) -> None:
        """Forget the frames of the last episode."""
        self._history.clear()

    def step(self, image: NDArray[np.uint8]) -> NDArray:
        """The input for the newest image of an episode: (1, *shape), with the history stacked."""
        if self.spec.history == 1:
            return self.prepare(image[None])
        frame = self.prepare(image[None])[0]
        if not self._history:
            self._history.extend([frame] * self._history.maxlen)
        self._history.append(frame)
        return np.ascontiguousarray(self._stack(list(self._history))[None])

    def sequence(self, chunks: Iterable[NDArray[np.uint8]]) -> NDArray:
        """The inputs for a whole episode's images in order, given in chunks (offline evaluation):
        (n, *shape). Each chunk is prepared as it comes, so only the model-sized inputs are kept."""
        frames = np.concatenate([self.prepare(chunk) for chunk in chunks])
        if self.spec.history == 1:
            return frames
        span = (self.spec.history - 1) * self.spec.history_stride
        padded = np.concatenate([np.repeat(frames[:1], span, axis=0), frames])
        return np.stack([self._stack(list(padded[i : i + span + 1])) for i in range(len(frames))])

    def _stack(self, frames: Sequence[NDArray]) -> NDArray:
        chosen = frames[:: self.spec.history_stride][-self.spec.history :]
        return np.concatenate(chosen, axis=0 if self.spec.layout == "NCHW" else -1)


# ------------------------------------------------------------------------------------ outputs
def output_position(channel: OutputChannel, outputs: Sequence[TensorInfo]) -> int:
    """Which of the model's outputs a channel reads (by position or by name)."""
    if isinstance(channel.tensor, int):
        if channel.tensor >= len(outputs):
            raise ContractError(f"the contract reads output {channel.tensor}, the model has {len(outputs)}: "
                                f"{', '.join(o.describe() for o in outputs)}")
        return channel.tensor
    names = [o.name for o in outputs]
    if channel.tensor not in names:
        raise ContractError(f"the contract reads output '{channel.tensor}', the model's outputs are {', '.join(names)}")
    return names.index(channel.tensor)


def raw(channel: OutputChannel, position: int, outputs: Sequence[NDArray], info: TensorInfo) -> NDArray[np.float64]:
    """The channel's values as the model gives them (dequantized), one per frame: (n,)."""
    array = np.asarray(outputs[position])
    values = array.reshape(len(array), -1)[:, channel.index].astype(np.float64)
    if info.quantization is not None and array.dtype.kind in "iu":
        scale, zero_point = info.quantization
        values = (values - zero_point) * scale
    return values


def to_si(channel: OutputChannel, values: NDArray[np.float64]) -> NDArray[np.float64]:
    """m/s or rad/s from the model's values: scale, offset, then the optional clip."""
    if channel.scale != 1.0 or channel.offset != 0.0:
        values = values * channel.scale + channel.offset
    if channel.clip is not None:
        values = np.clip(values, *channel.clip)
    return values


def decode(spec: OutputSpec, positions: tuple[int, int], outputs: Sequence[NDArray], infos: Sequence[TensorInfo]) -> NDArray[np.float64]:
    """(n, 2): v in m/s and w in rad/s for each frame."""
    columns = [to_si(channel, raw(channel, position, outputs, infos[position]))
               for channel, position in zip((spec.v, spec.w), positions, strict=True)]
    return np.stack(columns, axis=1)
