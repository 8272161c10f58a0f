"""The archive's SQLAlchemy models: markets, crawls and pages, vendors, listings, feedback, keys, schedule."""

from models.base import Base, ViewBase
from models.crawl import Crawl, Market, Page, Payload, Url
from models.feedback import Feedback
from models.listing import (
    Category,
    CategoryObservation,
    Listing,
    ListingPrice,
    ListingSighting,
    ListingSnapshot,
    ListingState,
    ShippingOption,
    ShippingRegion,
)
from models.schedule import ScheduledRun
from models.vendor import PgpKey, Vendor, VendorKey, VendorSighting, VendorSnapshot, VendorState

__all__ = [
    "Base",
    "Category",
    "CategoryObservation",
    "Crawl",
    "Feedback",
    "Listing",
    "ListingPrice",
    "ListingSighting",
    "ListingSnapshot",
    "ListingState",
    "Market",
    "Page",
    "Payload",
    "PgpKey",
    "ScheduledRun",
    "ShippingOption",
    "ShippingRegion",
    "Url",
    "Vendor",
    "VendorKey",
    "VendorSighting",
    "VendorSnapshot",
    "VendorState",
    "ViewBase",
]
