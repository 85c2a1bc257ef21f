"""catalog: partners, products, tours, bookings and client interests (soulkg.catalog.v1)."""
