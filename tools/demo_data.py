"""The demo data of the seed document (section 8), loaded once by `make run`.

One organization (Soul KG), an admin and two managers, 15 clients in every status and in the
seven supported languages with their cultural context, three partners, six products, twelve
tours (past, current, future; available, full, completed), interests and bookings,
conversations with messages in several languages, agent configurations, prompt variants, an
experiment, a dialogue analysis and the WhatsApp session. Each table's rows go in through the
role of the service that owns the table (libs/registry.py), under row-level security, like
everything else: nothing here bypasses RLS, and no service's role writes another's tables.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from libs.tenancy.database import NO_ORGANIZATION, TenantDatabase
from services.crm import repository as crm_repo
from services.identity import domain as identity_domain
from services.identity import repository as identity_repo

SLUG = "soul-kg"
PASSWORD = "soulkg-demo-2026"
ADMIN_EMAIL = "admin@soulkg.example"
MANAGERS = [("aigerim@soulkg.example", "Aigerim", "Sadykova"), ("timur@soulkg.example", "Timur", "Asanov")]

CLIENTS = [  # phone, first, last, language, status, cultural context
    ("+996555100001", "Emma", "Wilson", "en", "NEW_LEAD", {"formality": "casual"}),
    ("+996555100002", "Ivan", "Petrov", "ru", "QUALIFIED", {"formality": "formal", "group": "family"}),
    ("+971501000003", "Fatima", "Al Mansouri", "ar", "WARMED", {"halal": True, "formality": "formal"}),
    ("+33610000004", "Camille", "Durand", "fr", "PROPOSAL_SENT", {"diet": "vegetarian"}),
    ("+4915100000005", "Lukas", "Schneider", "de", "NEGOTIATION", {"punctuality": "strict"}),
    ("+34610000006", "Lucia", "Garcia", "es", "SOLD", {"group": "friends"}),
    ("+48500000007", "Piotr", "Nowak", "pl", "SERVICE", {"interests": ["hiking", "photography"]}),
    ("+996555100008", "Aibek", "Toktogulov", "ru", "CLOSED", {"halal": True}),
    ("+14155550009", "Olivia", "Brown", "en", "QUALIFIED", {"budget": "premium"}),
    ("+971501000010", "Omar", "Haddad", "ar", "NEW_LEAD", {"halal": True, "prayer_breaks": True}),
    ("+33610000011", "Louis", "Martin", "fr", "WARMED", {}),
    ("+4915100000012", "Hannah", "Muller", "de", "SOLD", {"accessibility": "step-free"}),
    ("+34610000013", "Carlos", "Lopez", "es", "NEW_LEAD", {}),
    ("+48500000014", "Anna", "Kowalska", "pl", "PROPOSAL_SENT", {"diet": "gluten-free"}),
    ("+996555100015", "Dana", "Bekova", "ru", "NEGOTIATION", {"formality": "casual", "group": "couple"}),
]
PARTNERS = [
    ("Ala-Archa Guides", "+996700200001", "guides@ala-archa.example", "+996700200001", "@alaarcha_guides",
     "15% commission, payment within 7 days", "4.80"),
    ("Issyk-Kul Yurt Camp", "+996700200002", "camp@issykkul.example", "+996700200002", None,
     "Fixed price per night, 50% prepayment", "4.50"),
    ("Tian Shan 4x4", "+996700200003", "drive@tianshan.example", None, "@tianshan4x4",
     "Per-day vehicle rate, fuel included", "4.20"),
]
PRODUCTS = [  # name, description, days, type, price, partner index, inclusions, exclusions, options
    ("Weekend Getaway", "Three to four days in the mountains near Bishkek", 3, "TOUR", "450.00", 0,
     ["transport", "guide", "2 nights in a guesthouse"], ["flights"], {"banya": 40, "horse_riding": 35}),
    ("Exploration & Connection", "Seven days around Issyk-Kul with yurt stays", 7, "TOUR", "1290.00", 1,
     ["transport", "yurt camp", "meals"], ["flights", "insurance"], {"eagle_hunting_show": 60}),
    ("Private Escape", "A private tour for two, built around the guests", 5, "PACKAGE", "2400.00", 2,
     ["private driver", "boutique hotels", "all meals"], ["flights"], {"snowmobiles": 120}),
    ("Song-Kul Horse Trek", "Four days on horseback to Song-Kul lake", 4, "TOUR", "780.00", 0,
     ["horses", "guide", "tents"], ["sleeping bags"], {}),
    ("Airport Transfer", "Manas airport to any Bishkek hotel", None, "SERVICE", "35.00", 2, ["driver"], [], {}),
    ("Silk Road Package", "Ten days: Bishkek, Issyk-Kul, Naryn, Tash Rabat", 10, "PACKAGE", "2950.00", None,
     ["transport", "guides", "hotels", "yurts", "meals"], ["flights", "visa"], {"cooking_class": 45}),
]


async def _insert(conn, table: str, values: dict) -> uuid.UUID:
    columns = ", ".join(values)
    placeholders = ", ".join(f"${i + 1}" for i in range(len(values)))
    return await conn.fetchval(f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) RETURNING id",
                               *values.values())


async def load(dbs: Mapping[str, TenantDatabase]) -> bool:
    """Load the demo organization unless it exists. True when it was loaded now.

    `dbs`: each service's pool, connected as its own role, by service name. One transaction
    per service's part, in the order of the references between them."""
    async with dbs["identity"].transaction(NO_ORGANIZATION, readonly=True) as conn:
        if await identity_repo.organization_id_by_slug(conn, SLUG) is not None:
            return False
    password_hash = await identity_domain.hash_password(PASSWORD)
    org = uuid.uuid4()
    now = datetime.now(UTC)
    async with dbs["identity"].transaction(org) as conn:
        await identity_repo.create_organization(conn, org, "Soul KG", SLUG)
        await identity_repo.update_organization(conn, {"settings": json.dumps(
            {"timezone": "Asia/Bishkek", "default_currency": "USD", "languages": ["en", "ru", "ar"]})})
        admin = await identity_repo.insert_user(conn, ADMIN_EMAIL, password_hash, "Aida", "Admin", "ADMIN")
        managers = [await identity_repo.insert_user(conn, email, password_hash, first, last, "MANAGER")
                    for email, first, last in MANAGERS]

    async with dbs["catalog"].transaction(org) as conn:
        partners = [await _insert(conn, "partners", {
            "organization_id": org, "name": name, "contact_phone": phone, "contact_email": email,
            "contact_whatsapp": whatsapp, "contact_telegram": telegram, "conditions": conditions,
            "rating": Decimal(rating)}) for name, phone, email, whatsapp, telegram, conditions,
            rating in PARTNERS]
        products = [await _insert(conn, "products", {
            "organization_id": org, "name": name, "description": description, "duration": days, "type": kind,
            "base_price": Decimal(price),
            "partner_id": partners[partner] if partner is not None else None,
            "inclusions": json.dumps(inclusions), "exclusions": json.dumps(exclusions), "options": json.dumps(options)})
            for name, description, days, kind, price, partner, inclusions, exclusions, options in PRODUCTS]

        tours = []
        for index in range(12):
            product = products[index % 4]
            start = now + timedelta(days=-60 + index * 12)
            days = PRODUCTS[index % 4][2]
            status = "COMPLETED" if start + timedelta(days=days) < now else ("FULL" if index % 5 == 4 else "AVAILABLE")
            capacity = 12
            tours.append(await _insert(conn, "tours", {
                "organization_id": org, "product_id": product, "start_date": start,
                "end_date": start + timedelta(days=days), "max_participants": capacity,
                "current_participants": capacity if status == "FULL" else (index * 3) % capacity, "status": status,
                "notes": "Demo tour"}))

    async with dbs["agents"].transaction(org) as conn:
        variant_a = await _insert(conn, "prompt_variants", {
            "organization_id": org, "agent_type": "COMMUNICATION", "name": "Warm and brief",
            "description": "Short friendly replies", "prompt": "You are a warm, brief travel assistant for Soul KG.",
            "is_default": True})
        variant_b = await _insert(conn, "prompt_variants", {
            "organization_id": org, "agent_type": "COMMUNICATION", "name": "Storyteller",
            "description": "Paints the trip with stories", "prompt": "You tell short stories about Kyrgyzstan's places."})
        experiment = await _insert(conn, "experiments", {
            "organization_id": org, "agent_type": "COMMUNICATION", "name": "Tone of the first reply",
            "description": "Warm-and-brief against storyteller"})
        for variant, weight in ((variant_a, 50), (variant_b, 50)):
            await _insert(conn, "experiment_variants", {"organization_id": org, "experiment_id": experiment,
                                                        "prompt_variant_id": variant, "weight": weight})
        for agent_type, name in (("COMMUNICATION", "Default communication"), ("QUALIFICATION", "Budget and dates"),
                                 ("PRODUCT_SELECTION", "Tour matcher")):
            await _insert(conn, "agent_configurations", {
                "organization_id": org, "agent_type": agent_type, "name": name,
                "prompt": f"{name}: follow the organization's tone and cultural notes.",
                "settings": json.dumps({"model": "any", "temperature": 0.4})})

    async with dbs["crm"].transaction(org) as conn:
        clients = []
        for index, (phone, first, last, language, status, context) in enumerate(CLIENTS):
            client = await crm_repo.insert_client(conn, {
                "phone": phone, "first_name": first, "last_name": last, "preferred_language": language,
                "cultural_context": json.dumps(context), "metadata": json.dumps({"source": "demo"}),
                "assigned_partner_id": str(partners[index % 3]) if status in ("SOLD", "SERVICE") else None,
                "prompt_variant_id": str((variant_a, variant_b)[index % 2])})
            await crm_repo.insert_history(conn, client.id, None, "NEW_LEAD", "SYSTEM", None, None, "demo data")
            if status != "NEW_LEAD":
                await crm_repo.set_status(conn, client.id, status)
                await crm_repo.insert_history(conn, client.id, "NEW_LEAD", status, "HUMAN",
                                              managers[index % 2].id, None, "demo data")
            clients.append(client.id)

    async with dbs["catalog"].transaction(org) as conn:
        for index, (client_id, (_, _, _, _, status, _)) in enumerate(zip(clients, CLIENTS, strict=True)):
            if index < 8:
                await _insert(conn, "client_products", {"organization_id": org, "client_id": client_id,
                                                        "product_id": products[index % len(products)],
                                                        "status": ("INTERESTED", "PROPOSED", "SELECTED", "BOOKED")[index % 4]})
            if status in ("SOLD", "SERVICE", "NEGOTIATION"):
                await _insert(conn, "client_tours", {
                    "organization_id": org, "client_id": client_id, "tour_id": tours[6 + index % 6],
                    "status": {"SOLD": "BOOKED", "SERVICE": "CONFIRMED", "NEGOTIATION": "PROPOSED"}[status],
                    "participants": 2})

    async with dbs["messaging"].transaction(org) as conn:
        dialogues = [
            (0, "en", [("Hi! Do you have weekend trips in March?", None),
                       ("Hello Emma! Yes — our Weekend Getaway leaves every Friday. How many of you?", "AI")]),
            (1, "ru", [("Здравствуйте, интересует тур на Иссык-Куль для семьи", None),
                       ("Здравствуйте, Иван! Сколько взрослых и детей поедет?", "AI"),
                       ("Двое взрослых и двое детей, в июле", None)]),
            (2, "ar", [("مرحبا، هل الطعام حلال في الجولة؟", None),
                       ("مرحبا فاطمة! نعم، جميع الوجبات حلال.", "HUMAN")]),
            (3, "fr", [("Bonjour, le circuit Exploration est-il végétarien ?", None),
                       ("Bonjour Camille ! Oui, nous adaptons tous les repas.", "AI")]),
        ]
        for client_index, language, lines in dialogues:
            started = now - timedelta(days=3, hours=client_index)
            managed_by = "HUMAN" if any(sender == "HUMAN" for _, sender in lines) else "AI"
            conversation = await _insert(conn, "conversations", {
                "organization_id": org, "client_id": clients[client_index], "managed_by": managed_by,
                "last_message_at": started + timedelta(minutes=len(lines))})
            for position, (content, sender) in enumerate(lines):
                incoming = sender is None
                await _insert(conn, "messages", {
                    "organization_id": org, "conversation_id": conversation,
                    "direction": "INCOMING" if incoming else "OUTGOING",
                    "sender": "CLIENT" if incoming else sender,
                    "sender_id": admin.id if sender == "HUMAN" else None, "content": content,
                    "language": language, "whatsapp_message_id": f"demo-{client_index}-{position}",
                    "status": "DELIVERED", "created_at": started + timedelta(minutes=position)})

    async with dbs["agents"].transaction(org) as conn:
        await _insert(conn, "dialogue_analysis", {
            "organization_id": org, "analysis_type": "CONVERSION_METRICS", "prompt_variant_id": variant_a,
            "data": json.dumps({"conversations": 4, "qualified": 2}),
            "recommendations": json.dumps(["Ask for travel dates in the first reply"])})
    async with dbs["messaging"].transaction(org) as conn:
        await _insert(conn, "whatsapp_sessions", {"organization_id": org, "status": "DISCONNECTED"})
    return True
