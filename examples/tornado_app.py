"""Tornado on Qactuar through `qactuar.contrib.tornado`: `qactuar tornado_app:app`."""

import asyncio

from tornado.web import Application, RequestHandler

from qactuar.contrib.tornado import TornadoApp


class HelloHandler(RequestHandler):
    def get(self) -> None:
        self.write("Hello from Tornado")


class TickHandler(RequestHandler):
    async def get(self) -> None:
        for n in range(3):
            self.write(f"tick {n}\n")
            await self.flush()  # each flush() reaches the client as it happens
            await asyncio.sleep(0.1)


class GreetHandler(RequestHandler):
    def get(self, name: str) -> None:
        self.write({"greeting": f"Hello, {name}!"})


app = TornadoApp(Application([
    (r"/", HelloHandler),
    (r"/tick", TickHandler),
    (r"/greet/(\w+)", GreetHandler),
]))
