"""Bags in Udacity Challenge 2's layout, written with rosbags: camera frames (CompressedImage JPEGs or raw
Images) and Dataspeed's drive-by-wire reports, whose types are registered from their .msg definitions."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

# dbw_mkz_msgs as the Udacity bags of 2016 carry them
DBW = {
    "SteeringReport": "Header header\nfloat32 steering_wheel_angle\nfloat32 steering_wheel_angle_cmd\n"
                      "float32 steering_wheel_torque\nfloat32 speed\nbool enabled\nbool override\nbool driver\n"
                      "bool fault_wdc\nbool fault_bus1\nbool fault_bus2\nbool fault_calibration\n"
                      "bool fault_connector\n",
    "ThrottleReport": "Header header\nfloat32 pedal_input\nfloat32 pedal_cmd\nfloat32 pedal_output\nbool enabled\n"
                      "bool override\nbool driver\nbool fault_wdc\nbool fault_ch1\nbool fault_ch2\n"
                      "bool fault_connector\n",
    "BrakeReport": "Header header\nfloat32 pedal_input\nfloat32 pedal_cmd\nfloat32 pedal_output\nfloat32 torque_input\n"
                   "float32 torque_cmd\nfloat32 torque_output\nbool boo_input\nbool boo_cmd\nbool boo_output\n"
                   "bool enabled\nbool override\nbool driver\nbool watchdog_counter\nbool fault_wdc\nbool fault_ch1\n"
                   "bool fault_ch2\nbool fault_connector\n",
}
REPORTS = {"/vehicle/steering_report": "SteeringReport", "/vehicle/throttle_report": "ThrottleReport",
           "/vehicle/brake_report": "BrakeReport"}


def typestore(ros2: bool = False):
    store = get_typestore(Stores.ROS2_HUMBLE if ros2 else Stores.ROS1_NOETIC)
    for name, text in DBW.items():
        store.register(get_types_from_msg(text, f"dbw_mkz_msgs/msg/{name}"))
    return store


def jpeg(value: int, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    return cv2.imencode(".jpg", np.full((*size, 3), value, np.uint8))[1]


def _message(store, msgtype: str, ns: int, **fields):
    """A message of `msgtype` stamped `ns`, the fields not given zero (or False)."""
    cls = store.types[msgtype]
    stamp = store.types["builtin_interfaces/msg/Time"](ns // 1_000_000_000, ns % 1_000_000_000)
    ros1 = store.fielddefs["std_msgs/msg/Header"][1][0][0] == "seq"
    header = store.types["std_msgs/msg/Header"](*([0] if ros1 else []), stamp, "")
    values = {name: fields.get(name, False if kind[1][0] == "bool" else 0)
              for name, kind in store.fielddefs[msgtype][1] if name != "header"}
    return cls(header, **values)


def write_bag(path: Path, frames: dict[str, list[tuple[int, np.ndarray]]],
              reports: dict[str, list[tuple[int, dict[str, float]]]], ros2: str | None = None) -> Path:
    """A bag at `path`: `frames` {camera topic: [(stamp ns, JPEG bytes or an RGB array for a raw Image)]},
    `reports` {report topic: [(stamp ns, {field: value})]}; ROS 1, or ROS 2 with `ros2` = sqlite3 or mcap."""
    path.parent.mkdir(parents=True, exist_ok=True)
    store = typestore(ros2 is not None)
    serialize = store.serialize_cdr if ros2 else store.serialize_ros1
    if ros2:
        from rosbags.rosbag2 import StoragePlugin, Writer
        writer = Writer(path, version=9, storage_plugin=StoragePlugin[ros2.upper()])
    else:
        from rosbags.rosbag1 import Writer
        writer = Writer(path)
    messages = []
    with writer:
        for topic, items in frames.items():
            raw = items and items[0][1].ndim == 3
            msgtype = "sensor_msgs/msg/Image" if raw else "sensor_msgs/msg/CompressedImage"
            connection = writer.add_connection(topic, msgtype, typestore=store)
            for ns, data in items:
                fields = ({"height": data.shape[0], "width": data.shape[1], "encoding": "rgb8",
                           "step": data.shape[1] * 3, "data": data.reshape(-1)} if raw
                          else {"format": "jpeg", "data": data})
                messages.append((ns, connection, _message(store, msgtype, ns, **fields)))
        for topic, items in reports.items():
            msgtype = f"dbw_mkz_msgs/msg/{REPORTS[topic]}"
            connection = writer.add_connection(topic, msgtype, typestore=store)
            messages += [(ns, connection, _message(store, msgtype, ns, **fields)) for ns, fields in items]
        for ns, connection, message in sorted(messages, key=lambda m: m[0]):
            writer.write(connection, ns, serialize(message, connection.msgtype))
    return path
