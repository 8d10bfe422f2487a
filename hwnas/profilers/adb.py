"""An Android phone over adb (the ``adb-shell`` library: USB or TCP, RSA key from the config), safely quoted.

Every command is built as an argument list and quoted with :func:`shlex.quote` before it reaches the phone's
shell, so a model path or device name can never run a command (``tests/profilers/test_android.py`` tries).
A dropped connection becomes :class:`PhoneDisconnected` (a DeviceUnavailableError): the profile stops, what
was stored stays, and the same command resumes once the phone is back. ``AdbSettings`` validates the
config's ``connection`` mapping with errors naming the file and field.
"""

from __future__ import annotations

import os
import re
import shlex
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwnas.device_config import DeviceConfig
from hwnas.errors import ConfigError, DeviceUnavailableError, InputError

DELEGATES = ("cpu", "xnnpack", "gpu", "nnapi")
_RC_MARK = "__HWNAS_RC="


class PhoneDisconnected(DeviceUnavailableError):
    """The phone went away (cable, Wi-Fi, adb auth revoked); what was measured is stored."""


@dataclass(frozen=True)
class AdbSettings:
    """The ``connection`` fields of an ``android-tflite`` device config."""

    transport: str = "usb"  # usb | tcp
    serial: str | None = None  # USB serial (None: the only phone attached)
    host: str | None = None  # TCP: the phone's address (adb tcpip 5555 first)
    port: int = 5555
    rsa_key_path: str = "~/.android/adbkey"  # the private key the phone has authorised
    timeout_s: float = 30.0
    remote_dir: str = "/data/local/tmp/hwnas"
    benchmark_model: str = "benchmark_model"  # local path of the user's binary, pushed to remote_dir
    delegate: str = "xnnpack"
    affinity: str | None = None  # taskset CPU mask in hex, e.g. "f0" for the big cores of a 4+4 SoC
    invocations: int = 3  # benchmark_model runs per measurement (each one sample: its own average)
    op_profiling: bool = True
    quantization: str = "float32"
    battery_path: str = "/sys/class/power_supply/battery"
    sign_convention: str = "auto"
    current_unit: str = "uA"

    @classmethod
    def from_config(cls, config: DeviceConfig) -> AdbSettings:
        src = config.source_path or config.name
        c = dict(config.connection or {})
        known = set(cls.__dataclass_fields__)
        extra = sorted(set(c) - known)
        if extra:
            raise ConfigError(f"{src}: unknown connection field(s) {extra}; expected some of {sorted(known)}")

        def fail(field: str, expected: str) -> ConfigError:
            return ConfigError(
                f"{src}: field 'connection.{field}': expected {expected}, got {c.get(field)!r}"
            )

        if c.get("transport", "usb") not in ("usb", "tcp"):
            raise fail("transport", "usb or tcp")
        if c.get("transport") == "tcp" and not c.get("host"):
            raise fail("host", "the phone's IP address or host name for transport tcp")
        if c.get("delegate", "xnnpack") not in DELEGATES:
            raise fail("delegate", f"one of {list(DELEGATES)}")
        aff = c.get("affinity")
        if aff is not None and not re.fullmatch(r"(0x)?[0-9a-fA-F]{1,16}", str(aff)):
            raise fail("affinity", "a hexadecimal CPU mask such as f0")
        for name in ("port", "invocations"):
            if name in c and (not isinstance(c[name], int) or isinstance(c[name], bool) or c[name] < 1):
                raise fail(name, "a positive integer")
        if "timeout_s" in c and not (isinstance(c["timeout_s"], (int, float)) and c["timeout_s"] > 0):
            raise fail("timeout_s", "a positive number of seconds")
        if c.get("quantization", "float32") not in ("float32", "int8"):
            raise fail("quantization", "float32 or int8")
        if c.get("sign_convention", "auto") not in ("auto", "kernel", "inverted"):
            raise fail("sign_convention", "auto, kernel or inverted")
        if c.get("current_unit", "uA") not in ("uA", "mA"):
            raise fail("current_unit", "uA or mA")
        if "remote_dir" in c and not str(c["remote_dir"]).startswith("/"):
            raise fail("remote_dir", "an absolute path on the phone")
        kwargs = {k: c[k] for k in known if k in c}
        if "affinity" in kwargs:
            kwargs["affinity"] = str(kwargs["affinity"]).lower().removeprefix("0x")
        return cls(**kwargs)


def quote_command(argv: Sequence[str]) -> str:
    """One shell command line from an argument list: every argument quoted, nothing interpreted."""
    if not argv:
        raise InputError("empty command")
    return " ".join(shlex.quote(str(a)) for a in argv)


def _adb_errors() -> tuple[type[BaseException], ...]:
    from adb_shell import exceptions as ex

    return (ex.AdbConnectionError, ex.AdbTimeoutError, ex.TcpTimeoutException, ex.UsbReadFailedError,
            ex.UsbWriteFailedError, ex.InvalidResponseError, ex.InvalidChecksumError, ex.InvalidCommandError,
            OSError, ConnectionError)  # fmt: skip


class AdbShell:
    """One adb connection: ``run`` an argument list, ``push`` a file; reconnects once before giving up.

    ``transport`` (an ``adb_shell`` ``BaseTransport``) replaces the USB/TCP transport the settings name:
    tests pass a fake phone; nothing else changes.
    """

    def __init__(self, settings: AdbSettings, transport: Any = None) -> None:
        self.settings = settings
        self._transport = transport
        self._device: Any = None
        self._lock = threading.RLock()

    # --- connection ------------------------------------------------------------------------------------
    def _make_device(self) -> Any:
        try:
            from adb_shell.adb_device import AdbDevice, AdbDeviceTcp
        except ModuleNotFoundError as exc:
            raise DeviceUnavailableError(
                "adb needs the adb-shell package", hint="pip install 'hwnas[android]'"
            ) from exc
        s = self.settings
        if self._transport is not None:
            return AdbDevice(self._transport, default_transport_timeout_s=s.timeout_s)
        if s.transport == "tcp":
            return AdbDeviceTcp(s.host, s.port, default_transport_timeout_s=s.timeout_s)
        try:
            from adb_shell.adb_device import AdbDeviceUsb
        except ImportError as exc:  # AdbDeviceUsb needs libusb1
            raise DeviceUnavailableError(
                "adb over USB needs libusb1", hint="pip install 'adb-shell[usb]'"
            ) from exc
        return AdbDeviceUsb(serial=s.serial, default_transport_timeout_s=s.timeout_s)

    def _signers(self) -> list[Any]:
        path = Path(os.path.expanduser(self.settings.rsa_key_path))
        if not path.is_file():
            if self._transport is not None:
                return []  # a fake phone needs no key
            raise DeviceUnavailableError(
                f"adb RSA key {path} (connection.rsa_key_path) does not exist",
                hint="run `adb keygen ~/.android/adbkey` (or plug the phone into a host with platform-tools "
                "once) and accept the prompt on the phone",
            )
        from adb_shell.auth.sign_pythonrsa import PythonRSASigner

        pub = path.with_name(path.name + ".pub")
        return [PythonRSASigner(pub.read_text() if pub.is_file() else "", path.read_text())]

    def connect(self) -> None:
        with self._lock:
            if self._device is not None and self._device.available:
                return
            try:
                self._device = self._make_device()
                self._device.connect(rsa_keys=self._signers(), auth_timeout_s=self.settings.timeout_s)
            except DeviceUnavailableError:
                raise
            except _adb_errors() + (Exception,) as exc:  # adb-shell raises many types on a failed handshake
                self._device = None
                where = (f"{self.settings.host}:{self.settings.port}" if self.settings.transport == "tcp"
                         else f"USB {self.settings.serial or '(first phone)'}")  # fmt: skip
                raise PhoneDisconnected(
                    f"cannot connect to the phone over adb ({where}): {type(exc).__name__}: {exc}",
                    hint="check the cable or Wi-Fi, that USB debugging is on and this host's key is "
                    "accepted; stop a running `adb server` (it holds the USB interface): `adb kill-server`. "
                    "What was measured is stored: run the same command again to resume",
                ) from exc

    def close(self) -> None:
        with self._lock:
            if self._device is not None:
                try:
                    self._device.close()
                finally:
                    self._device = None

    def _retry(self, what: str, fn: Any) -> Any:
        for attempt in (1, 2):
            self.connect()
            try:
                return fn(self._device)
            except _adb_errors() as exc:
                self._device = None
                if attempt == 2:
                    raise PhoneDisconnected(
                        f"the phone disconnected during {what}: {type(exc).__name__}: {exc}",
                        hint="what was measured is stored; reconnect the phone and run the same command "
                        "again to resume",
                    ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # --- commands --------------------------------------------------------------------------------------
    def run(self, argv: Sequence[str], *, timeout_s: float | None = None, check: bool = True) -> str:
        """Run ``argv`` in the phone's shell; its output. MeasurementError-free: a non-zero exit raises
        InputError naming the command when ``check``."""
        line = quote_command(argv) + f"; echo {_RC_MARK}$?"
        read_s = timeout_s or self.settings.timeout_s
        out = self._retry(
            f"`{argv[0]}`", lambda d: d.shell(line, read_timeout_s=read_s, timeout_s=timeout_s, decode=False)
        )
        text = out.decode("utf-8", errors="replace") if isinstance(out, bytes) else str(out)
        body, _, rc_text = text.rpartition(_RC_MARK)
        if not _:
            body, rc_text = text, ""
        rc = int(rc_text.strip()) if rc_text.strip().lstrip("-").isdigit() else None
        if check and rc not in (0, None):
            raise InputError(
                f"command on the phone failed (exit {rc}): {quote_command(argv)[:200]}",
                hint=body.strip()[-300:] or None,
            )
        return body

    def push(self, local: str | Path, remote: str, mode: int = 0o644) -> None:
        local = Path(local)
        if not local.is_file():
            raise InputError(f"{local}: file to push does not exist")
        import stat

        st_mode = stat.S_IFREG | mode
        self._retry(f"push of {local.name}", lambda d: d.push(str(local), remote, st_mode=st_mode))


_SHARED: dict[tuple[Any, ...], AdbShell] = {}
_SHARED_LOCK = threading.Lock()


def shared_shell(settings: AdbSettings, transport: Any = None) -> AdbShell:
    """One connection per phone per process: USB interfaces cannot be claimed twice (runner, battery
    sampler and fingerprint share it). A given ``transport`` (tests) is its own key."""
    key = (settings.transport, settings.serial, settings.host, settings.port, id(transport))
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = AdbShell(settings, transport)
        return _SHARED[key]
