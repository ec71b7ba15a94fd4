"""The host's end of the bridge: requests and their responses over a byte stream, with
the sequence numbers and retries of docs/bridge-protocol.md ("Exactly once").

The stream is pyserial's ``serial_for_url``: a serial port (``/dev/ttyUSB0``), a TCP
socket (``socket://127.0.0.1:PORT``: the reference machine, a board top under Verilator)
or ``loop://``. Nothing here knows what is at the other end.
"""

import re
import time

import serial

from .protocol import (MAX_BODY, OVERHEAD, RESPONSE, RETRIES, Cmd, Parser, Status,
                       encode_frame)


class LinkError(Exception):
    """The link failed: the message names the port, the command and what happened, in
    one line."""


class KeptResponse(LinkError):
    """The machine answered this SEQ with another command's response: the one it kept
    from an earlier host whose last request had this SEQ (a host starting afresh sends
    RESET again under the next SEQ)."""


class MachineError(LinkError):
    """The machine answered a request with a status other than OK."""


def _cmd_name(cmd: int) -> str:
    try:
        return Cmd(cmd).name
    except ValueError:
        return f"command {cmd:#04x}"


class Link:
    """Requests to a machine over the stream at ``url``.

    Parameters
    ----------
    url : str
        Anything ``serial.serial_for_url`` opens.
    baud : int
        The serial port's rate (ignored by sockets).
    timeout : float
        Seconds of silence after a request (or after the last byte of its response
        begun) before sending the request again. A response still arriving is waited
        for up to the time a whole frame takes on the line at ``baud``: at 115200 baud
        a full frame takes 0.7 s.
    retries : int
        Sends of a request before giving up (the document's RETRIES).

    Attributes
    ----------
    sent, retried : int
        Requests sent (once each), and sends again of one unanswered.
    stale : int
        Well-formed frames that were not the awaited response (an earlier SEQ's answer
        arriving late, a request echoed).
    """

    def __init__(self, url: str, baud: int = 115200, timeout: float = 1.0,
                 retries: int = RETRIES, seq: int = 0):
        self.url = url
        self.timeout = timeout
        #: the longest a response may take to arrive once it has begun (10 bits a byte)
        self.frame_time = (MAX_BODY + OVERHEAD) * 10 / baud
        self.retries = retries
        if url.startswith("socket://") and not re.match(r"socket://.+:\d+", url):
            raise LinkError(f"cannot open {url}: a socket's URL is socket://HOST:PORT")
        try:
            self.port = serial.serial_for_url(url, baudrate=baud, timeout=min(timeout, 0.05),
                                              write_timeout=max(timeout, 1.0))
        except (serial.SerialException, ValueError, OSError) as e:
            raise LinkError(f"cannot open {url}: {_reason(e)}") from None
        self.parser = Parser()
        self.seq = seq & 0xFF
        self.sent = self.retried = self.stale = 0

    @property
    def dropped(self) -> int:
        """Frames from the machine dropped for a bad LEN or CRC, or cut."""
        return self.parser.dropped

    @property
    def garbage(self) -> int:
        """Bytes from the machine that were not in any frame."""
        return self.parser.garbage

    def stats(self) -> dict[str, int]:
        return {"requests": self.sent, "retries": self.retried, "dropped_frames": self.dropped,
                "garbage_bytes": self.garbage, "stale_frames": self.stale}

    def close(self) -> None:
        self.port.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def request(self, cmd: int, body: bytes = b"", *, next_seq: bool = True) -> bytes:
        """Send ``cmd`` with ``body`` and return its results (the response body after
        its OK status); MachineError for another status, LinkError when no response came
        after :attr:`retries` sends."""
        if len(body) > MAX_BODY:
            raise ValueError(f"{_cmd_name(cmd)}: a body of {len(body)} bytes is over "
                             f"MAX_BODY; split it")
        if next_seq:
            self.seq = (self.seq + 1) & 0xFF
        frame = encode_frame(self.seq, cmd, body)
        self.sent += 1
        dropped, stale, garbage = self.dropped, self.stale, self.garbage
        for attempt in range(self.retries):
            if attempt:
                self.retried += 1
            self._write(frame, cmd)
            response = self._await(cmd)
            if response is not None:
                return self._results(cmd, response)
        if self.dropped > dropped:
            what = f"only frames with a bad CRC or length ({self.dropped - dropped})"
        elif self.garbage > garbage:
            what = f"garbage only ({self.garbage - garbage} bytes)"
        elif self.stale > stale:
            what = (f"only frames that were not its answer ({self.stale - stale}: "
                    f"answers to other requests, or the requests echoed)")
        else:
            what = f"no answer within {self.timeout:g} s"
        raise LinkError(f"{self.url}: {_cmd_name(cmd)} (SEQ {self.seq}) failed after "
                        f"{self.retries} sends: {what}")

    def _write(self, frame: bytes, cmd: int) -> None:
        try:
            self.port.write(frame)
            self.port.flush()
        except (serial.SerialException, OSError) as e:
            raise LinkError(f"{self.url}: {_cmd_name(cmd)}: cannot send: {_reason(e)}") \
                from None

    def _await(self, cmd: int) -> bytes | None:
        """The body of the response to this SEQ's ``cmd``, or None after the timeout."""
        last = time.monotonic()
        cap = last + self.timeout + self.frame_time     # a line that never stops babbling
        want = (cmd | RESPONSE) & 0xFF
        while time.monotonic() < min(last + self.timeout, cap):
            try:
                # As many bytes as the frame begun still needs: one read, not one a byte
                data = self.port.read(max(self.port.in_waiting, self.parser.needed))
            except (serial.SerialException, OSError) as e:
                raise LinkError(f"{self.url}: {_cmd_name(cmd)}: cannot receive: "
                                f"{_reason(e)}") from None
            if data:
                last = time.monotonic()
            for frame in self.parser.feed(data) if data else ():
                if frame.seq == self.seq and frame.cmd == want:
                    return frame.body
                if frame.seq == self.seq and frame.cmd & RESPONSE:
                    raise KeptResponse(f"{self.url}: {_cmd_name(cmd)} (SEQ {self.seq}) was "
                                       f"answered by a kept {_cmd_name(frame.cmd & ~RESPONSE)} "
                                       f"response")
                self.stale += 1
        # A response cut short holds the parser's bytes: drop it, so that the retry's
        # response is hunted for afresh (and any frame behind it is taken).
        while self.parser.pending:
            for frame in self.parser.expire():
                if frame.seq == self.seq and frame.cmd == want:
                    return frame.body
                self.stale += 1
        return None

    def _results(self, cmd: int, body: bytes) -> bytes:
        if not body:
            raise LinkError(f"{self.url}: {_cmd_name(cmd)}: a response without a status")
        if body[0] != Status.OK:
            try:
                status = Status(body[0]).name
            except ValueError:
                status = f"status {body[0]}"
            raise MachineError(f"{self.url}: the machine answered {_cmd_name(cmd)} with "
                               f"{status}")
        return body[1:]


def _reason(e: Exception) -> str:
    """One line of what went wrong: pyserial's messages repeat the errno's text."""
    text = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return re.sub(r"^[Cc]ould not open port \S+: ", "", " ".join(str(text).split()))
