"""crm: clients and their pipeline status history (soulkg.crm.v1)."""
