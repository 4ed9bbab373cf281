#!/usr/bin/env python3
"""A TCP relay for e2e tests: tcp_relay.py LISTEN_PORT TARGET_HOST:TARGET_PORT.

Listens on 127.0.0.1:LISTEN_PORT (0: any; SO_REUSEADDR, so a relay killed and started again can
take the same port back) and copies bytes both ways to the target, one connection per client. It
prints "listening 127.0.0.1:PORT" once bound. A test kills it to cut one proxy off from the
control plane while the proxy keeps serving traffic, and starts it again to let it reconnect."""
import asyncio
import sys


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main():
    listen_port = int(sys.argv[1])
    target_host, target_port = sys.argv[2].rsplit(":", 1)

    async def handle(client_reader, client_writer):
        try:
            target_reader, target_writer = await asyncio.open_connection(target_host, int(target_port))
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, target_writer), pipe(target_reader, client_writer))

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port, reuse_address=True)
    print(f"listening 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
