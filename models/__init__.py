"""The archive's SQLAlchemy models: markets and crawls, vendors, listings, feedback and keys."""

from models.base import Base
from models.crawl import Crawl, Market, Page
from models.feedback import Feedback
from models.listing import (
    Category,
    CategoryObservation,
    Listing,
    ListingPrice,
    ListingSnapshot,
    ShippingOption,
    ShippingRegion,
)
from models.vendor import PgpKey, Vendor, VendorKey, VendorSnapshot

__all__ = [
    "Base",
    "Category",
    "CategoryObservation",
    "Crawl",
    "Feedback",
    "Listing",
    "ListingPrice",
    "ListingSnapshot",
    "Market",
    "Page",
    "PgpKey",
    "ShippingOption",
    "ShippingRegion",
    "Vendor",
    "VendorKey",
    "VendorSnapshot",
]
