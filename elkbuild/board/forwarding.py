"""A local port tunnelled to a port on the board's loopback through the open SSH
transport, so a debugger here reaches a gdb server there without opening any port
of the board to the network."""

from __future__ import annotations

import socket
import threading
from typing import Callable

import paramiko


class PortForward:
    """127.0.0.1:<port> on this machine, tunnelled to 127.0.0.1:<remote_port> on
    the board through the open SSH transport (one connection: gdb's)."""

    def __init__(self, transport: paramiko.Transport, remote_port: int) -> None:
        self.transport = transport
        self.remote_port = remote_port
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            client, _ = self.listener.accept()
        except OSError:
            return
        try:
            channel = self.transport.open_channel("direct-tcpip",
                                                  ("127.0.0.1", self.remote_port),
                                                  ("127.0.0.1", self.port))
        except Exception:  # the board refused: gdb then reports the closed connection
            client.close()
            return
        pumps = [threading.Thread(target=_pump, args=(client.recv, channel.sendall,
                                                      channel.shutdown_write), daemon=True),
                 threading.Thread(target=_pump, args=(channel.recv, client.sendall,
                                                      lambda: client.shutdown(socket.SHUT_WR)),
                                  daemon=True)]
        for pump in pumps:
            pump.start()
        for pump in pumps:
            pump.join()
        channel.close()
        client.close()

    def close(self) -> None:
        self.listener.close()


def _pump(receive: Callable[[int], bytes], send: Callable[[bytes], object],
          done: Callable[[], object]) -> None:
    try:
        while True:
            data = receive(65536)
            if not data:
                break
            send(data)
    except (OSError, EOFError):
        pass
    finally:
        try:
            done()
        except (OSError, EOFError):
            pass
