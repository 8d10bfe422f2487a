"""A fake phone behind adb-shell's own transport interface (``BaseTransport``), speaking the ADB protocol.

``AdbDevice`` talks to it exactly as to a USB or TCP phone: CNXN handshake, OPEN/OKAY/WRTE/CLSE streams,
``shell:`` commands and ``sync:`` pushes. What the phone answers comes from :class:`FakePhone`: recorded
outputs for ``getprop``, sysfs reads and ``dumpsys``, and anything else run by a real ``sh -c`` in a
sandbox directory standing in for ``/data/local/tmp`` (pushed files land there, with their modes), so a
quoting mistake would really run the injected command. ``unplug_after`` makes the cable drop after that
many shell commands.
"""

from __future__ import annotations

import re
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

from adb_shell import constants
from adb_shell.adb_message import AdbMessage, checksum, unpack
from adb_shell.transport.base_transport import BaseTransport

FILESYNC = {v: k for k, v in constants.FILESYNC_ID_TO_WIRE.items()}


class Unplugged(OSError):
    """What the transport raises once the fake cable is pulled (adb-shell's USB errors are OSErrors too)."""


class FakePhone:
    """The phone's state: files, recorded command outputs, and a log of every command line received."""

    def __init__(self, root: Path, recorded: dict[str, str | Callable[[str], str]]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.recorded = recorded  # regex on the command line -> output (or fn(command) -> output)
        self.commands: list[str] = []
        self.pushed: dict[str, bytes] = {}

    def shell(self, command: str) -> bytes:
        self.commands.append(command)
        # the host appends "; echo __HWNAS_RC=$?": answer the recorded part, run the rest
        head, sep, tail = command.partition("; echo __HWNAS_RC=")
        for pattern, answer in self.recorded.items():
            if re.fullmatch(pattern, head):
                out = answer(head) if callable(answer) else answer
                return (out + ("__HWNAS_RC=0\n" if sep else "")).encode()
        proc = subprocess.run(["sh", "-c", command], cwd=self.root, capture_output=True, timeout=60)
        return proc.stdout + proc.stderr

    def write(self, path: str, data: bytes, mode: int) -> None:
        self.pushed[path] = data
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(mode & 0o777)


class FakeTransport(BaseTransport):
    """The ADB protocol, device side, over in-memory buffers."""

    def __init__(self, phone: FakePhone, unplug_after: int | None = None) -> None:
        self.phone = phone
        self.unplug_after = unplug_after
        self.unplugged = False
        self._in = bytearray()
        self._out = bytearray()
        self._next_id = 100
        self._sync: dict[int, bytearray] = {}  # remote id -> filesync bytes received

    # --- BaseTransport ---------------------------------------------------------------------------------
    def connect(self, transport_timeout_s: float | None) -> None:
        if self.unplugged:
            raise Unplugged("no such device")
        self._in.clear()
        self._out.clear()

    def close(self) -> None:
        self._in.clear()

    def bulk_write(self, data: bytes, transport_timeout_s: float | None) -> int:
        if self.unplugged:
            raise Unplugged("write failed: device gone")
        self._in += data
        self._handle()
        return len(data)

    def bulk_read(self, numbytes: int, transport_timeout_s: float | None) -> bytes:
        if self.unplugged:
            raise Unplugged("read failed: device gone")
        chunk = bytes(self._out[:numbytes])
        del self._out[:numbytes]
        return chunk

    # --- device side -----------------------------------------------------------------------------------
    def _send(self, cmd: bytes, arg0: int, arg1: int, data: bytes = b"") -> None:
        msg = AdbMessage(cmd, arg0, arg1, data)
        self._out += msg.pack() + data

    def _handle(self) -> None:
        while len(self._in) >= constants.MESSAGE_SIZE:
            cmd, arg0, arg1, length, _ = unpack(bytes(self._in[: constants.MESSAGE_SIZE]))
            if len(self._in) < constants.MESSAGE_SIZE + length:
                return
            data = bytes(self._in[constants.MESSAGE_SIZE : constants.MESSAGE_SIZE + length])
            del self._in[: constants.MESSAGE_SIZE + length]
            self._message(constants.WIRE_TO_ID[cmd], arg0, arg1, data)

    def _message(self, cmd: bytes, local: int, remote: int, data: bytes) -> None:
        if cmd == constants.CNXN:
            banner = b"device::ro.product.name=fake;ro.product.model=Pixel;ro.product.device=sailfish;\0"
            self._send(constants.CNXN, constants.VERSION, constants.MAX_ADB_DATA, banner)
        elif cmd == constants.OPEN:
            self._next_id += 1
            rid = self._next_id
            self._send(constants.OKAY, rid, local)
            dest = data.rstrip(b"\0").decode()
            if dest.startswith("shell:"):
                if self.unplug_after is not None and len(self.phone.commands) >= self.unplug_after:
                    self.unplugged = True
                    raise Unplugged("the cable was pulled")
                out = self.phone.shell(dest[len("shell:") :])
                for i in range(0, len(out), 4096):
                    self._send(constants.WRTE, rid, local, out[i : i + 4096])
                self._send(constants.CLSE, rid, local)
            elif dest == "sync:":
                self._sync[rid] = bytearray()
        elif cmd == constants.WRTE and remote in self._sync:
            self._send(constants.OKAY, remote, local)
            buf = self._sync[remote]
            buf += data
            self._filesync(remote, local, buf)
        elif cmd == constants.CLSE and remote in self._sync:
            del self._sync[remote]
            self._send(constants.CLSE, remote, local)
        # OKAY and CLSE acknowledgements of shell streams need no answer

    def _filesync(self, rid: int, local: int, buf: bytearray) -> None:
        """Parse SEND path,mode / DATA... / DONE; answer OKAY when the file is complete."""
        pos, path, mode, content = 0, None, 0o644, bytearray()
        while pos + 8 <= len(buf):
            wire, size = struct.unpack("<2I", bytes(buf[pos : pos + 8]))
            kind = FILESYNC.get(wire)
            if kind == constants.DONE:
                if path is None:
                    raise AssertionError("DONE before SEND")
                self.phone.write(path, bytes(content), mode)
                del buf[: pos + 8]
                reply = struct.pack("<2I", constants.FILESYNC_ID_TO_WIRE[constants.OKAY], 0)
                self._send(constants.WRTE, rid, local, reply)
                return
            if pos + 8 + size > len(buf):
                return  # wait for more
            body = bytes(buf[pos + 8 : pos + 8 + size])
            if kind == constants.SEND:
                p, _, m = body.decode().rpartition(",")
                path, mode = p, int(m)
            elif kind == constants.DATA:
                content += body
            pos += 8 + size


def checksum_ok(data: bytes) -> int:  # used by tests that build messages by hand
    return checksum(data)
