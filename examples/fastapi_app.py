"""FastAPI on Qactuar: `qactuar fastapi_app:app` (or mounted by qactuar_config.json)."""

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI(title="Qactuar example")


class Item(BaseModel):
    name: str
    price: float


@app.get("/")
async def index() -> dict[str, str]:
    return {"message": "Hello from FastAPI"}


@app.post("/items")
async def create_item(item: Item) -> dict[str, object]:
    return {"name": item.name, "price_with_tax": round(item.price * 1.2, 2)}
