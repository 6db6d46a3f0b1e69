"""Write and read asg injection model files (format 2; proxy/core/src/detectors/injection/classifier/model.rs)."""
import hashlib
import json
import struct

MAGIC = b"ASGINJM\x02"


def write(path, name, features, heads, trained=None):
    """heads: list of dicts {name, bias, scale, thresholds: {medium, high}, weights: bytes (little-endian int16)}."""
    payload = b"".join(h["weights"] for h in heads)
    header = {
        "format": 2,
        "name": name,
        "features": features,
        "heads": [
            {"name": h["name"], "bias": float(h["bias"]), "scale": float(h["scale"]), "thresholds": h["thresholds"]}
            for h in heads
        ],
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "trained": trained or {},
    }
    raw = json.dumps(header, sort_keys=True, ensure_ascii=False).encode()
    with open(path, "wb") as f:
        f.write(MAGIC + struct.pack("<I", len(raw)) + raw + payload)


def read_header(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == MAGIC, "not an asg injection model"
    (n,) = struct.unpack("<I", data[8:12])
    return json.loads(data[12 : 12 + n]), data[12 + n :]
