#!/usr/bin/env python3
"""A TCP proxy that adds a fixed delay in each direction, so a loopback
registry answers like a remote one. Used by bench/check.sh.

    latency-proxy.py LISTEN_PORT TARGET_HOST:TARGET_PORT ROUND_TRIP_MS
"""
import asyncio
import sys
import time


async def pipe(reader, writer, delay):
    """Copies reader to writer, each chunk `delay` seconds after it arrived, in order."""
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, chunk = await queue.get()
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if not chunk:
                break
            writer.write(chunk)
            await writer.drain()
        writer.close()

    delivery = asyncio.create_task(deliver())
    try:
        while True:
            chunk = await reader.read(65536)
            queue.put_nowait((time.monotonic() + delay, chunk))
            if not chunk:
                break
    except ConnectionError:
        queue.put_nowait((time.monotonic(), b""))
    await delivery


async def main():
    listen_port = int(sys.argv[1])
    target_host, target_port = sys.argv[2].rsplit(":", 1)
    one_way = float(sys.argv[3]) / 2000.0

    async def handle(client_reader, client_writer):
        # A remote connect costs a round trip before any byte moves.
        await asyncio.sleep(2 * one_way)
        try:
            server_reader, server_writer = await asyncio.open_connection(target_host, int(target_port))
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            pipe(client_reader, server_writer, one_way),
            pipe(server_reader, client_writer, one_way),
            return_exceptions=True,
        )

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    async with server:
        await server.serve_forever()


asyncio.run(main())
