"""ONNX export and inference sessions for machine-learned models (no pickle anywhere).

LightGBM boosters go through onnxmltools, scikit-learn estimators through skl2onnx; several boosters that
read the same features are merged into one graph with one output each, so a full forecast (point and
every quantile) is one ``InferenceSession.run``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from numpy.typing import NDArray

from impactlab.errors import CalibrationError

__all__ = ["b64", "lightgbm_graph", "session", "sklearn_graph", "unb64"]

INPUT = "X"
OPSET = 15


def lightgbm_graph(boosters: Mapping[str, Any], n_features: int) -> bytes:
    """One ONNX model computing every booster in ``boosters`` on the input ``X`` (float32, n × features);
    output ``name`` per booster, shape (n, 1)."""
    from onnx import compose, helper
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    nodes: list[Any] = []
    inits: list[Any] = []
    outputs: list[Any] = []
    first: onnx.ModelProto | None = None
    for i, (name, booster) in enumerate(boosters.items()):
        m = convert_lightgbm(
            booster, initial_types=[(INPUT, FloatTensorType([None, n_features]))], target_opset=OPSET, zipmap=False
        )
        first = first or m
        m = compose.add_prefix(m, prefix=f"b{i}_", rename_inputs=False)
        (out,) = m.graph.output
        nodes += list(m.graph.node)
        nodes.append(helper.make_node("Identity", [out.name], [name]))
        inits += list(m.graph.initializer)
        outputs.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, [None, 1]))
    if first is None:
        raise CalibrationError("no boosters to export")
    graph = helper.make_graph(nodes, "impactlab_forecast", [first.graph.input[0]], outputs, inits)
    model = helper.make_model(graph, opset_imports=list(first.opset_import), producer_name="impactlab")
    model.ir_version = first.ir_version
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def sklearn_graph(estimator: Any, n_features: int) -> bytes:
    """A fitted scikit-learn regressor as ONNX (input ``X`` float32, one output)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    m = convert_sklearn(estimator, initial_types=[(INPUT, FloatTensorType([None, n_features]))], target_opset=OPSET)
    return bytes(m.SerializeToString())


def session(model: bytes, *, threads: int = 1) -> ort.InferenceSession:
    """An onnxruntime session on the CPU with ``threads`` intra-op threads."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise CalibrationError(f"not a valid ONNX model: {exc}") from exc


def run(sess: ort.InferenceSession, X: NDArray[np.float64]) -> dict[str, NDArray[np.float64]]:
    """Every output of ``sess`` on ``X``, as float64 vectors keyed by output name."""
    outs = sess.run(None, {INPUT: np.ascontiguousarray(X, dtype=np.float32)})
    return {o.name: np.asarray(v, np.float64).reshape(-1) for o, v in zip(sess.get_outputs(), outs, strict=True)}


def b64(blob: bytes) -> str:
    """Bytes as base64 text, for the JSON model file."""
    return base64.b64encode(blob).decode("ascii")


def unb64(text: str) -> bytes:
    """Inverse of :func:`b64`."""
    return base64.b64decode(text.encode("ascii"), validate=True)
