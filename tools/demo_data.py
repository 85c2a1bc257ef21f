"""The demo data of the seed document (section 8), loaded by `make run` through the services.

One organization (Soul KG), an admin and two managers, 15 clients in every status and in the
seven supported languages with their cultural context, three partners, six products, twelve
tours (past, current, future; available, full, completed, one completed with its bookings),
interests and bookings, conversations with messages in several languages, agent
configurations, prompt variants, an experiment, a dialogue analysis and the WhatsApp session.

It is a client of the running services, like the web client and the channel adapter:
everything goes in through their gRPC APIs (the generated stubs), as the demo admin, the two
managers, the WhatsApp webhook and the AI agent (service tokens from identity's
IssueServiceToken), so the data obeys every rule the services enforce: statuses walked one
by one and recorded as HUMAN changes, seats booked through BookTour, tours completed through
CompleteTour, messages ingested and sent inside the 24-hour window, a hand-off before a
manager answers, an experiment started through its lifecycle.

    loaded = await load({"identity": "127.0.0.1:50051", ...}, service_keys=path)

Once: a second call finds the admin able to log in and the organization's settings written
(the load's last step) and does nothing. A load that stopped half-way (a crash, a kill) is
finished by the next call: every step first reads what exists (by natural keys: user email,
partner and product name, tour note, client phone, one booking per client and tour, one
interest per client and product, a message's channel id or text) and creates or moves only
what is missing; creates also carry request ids derived from a fixed namespace and the item,
so a create retried within the services' request-id retention returns the first result.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from google.protobuf import field_mask_pb2, struct_pb2, timestamp_pb2
from google.rpc import error_details_pb2, status_pb2
from google.type import money_pb2
from grpc import aio

from libs.tenancy.service_auth import load_service_key, sign_assertion
from soulkg.agents.v1 import agents_pb2, agents_pb2_grpc
from soulkg.agents.v1 import enums_pb2 as agents_enums
from soulkg.catalog.v1 import catalog_pb2 as cat
from soulkg.catalog.v1 import catalog_pb2_grpc
from soulkg.catalog.v1 import enums_pb2 as cat_enums
from soulkg.crm.v1 import crm_pb2, crm_pb2_grpc
from soulkg.crm.v1 import enums_pb2 as crm_enums
from soulkg.identity.v1 import enums_pb2 as identity_enums
from soulkg.identity.v1 import identity_pb2, identity_pb2_grpc
from soulkg.messaging.v1 import enums_pb2 as messaging_enums
from soulkg.messaging.v1 import messaging_pb2 as msg
from soulkg.messaging.v1 import messaging_pb2_grpc

SLUG = "soul-kg"
ORGANIZATION_NAME = "Soul KG"
PASSWORD = "soulkg-demo-2026"
ADMIN_EMAIL = "admin@soulkg.example"
ADMIN_NAME = ("Aida", "Admin")
MANAGERS = [("aigerim@soulkg.example", "Aigerim", "Sadykova"), ("timur@soulkg.example", "Timur", "Asanov")]
# Written last: an organization with these settings has all of its demo data.
SETTINGS = {"timezone": "Asia/Bishkek", "default_currency": "USD", "languages": ["en", "ru", "ar"]}
# Request ids of the creates: uuid5 of this namespace and the organization's slug and item.
REQUEST_NAMESPACE = uuid.UUID("6f1c2a4e-8d3b-5e7a-9c21-4b6d8e0f1a23")


@dataclass(frozen=True)
class DemoClient:
    phone: str
    first_name: str
    last_name: str
    language: str
    status: str  # the crm status it ends in, reached step by step along FUNNEL
    cultural_context: dict
    interest: tuple[int, str] | None = None  # (product index, interest status)
    booking: tuple[int, str] | None = None  # (tour index, booking status); 2 participants


FUNNEL = ["NEW_LEAD", "QUALIFIED", "WARMED", "PROPOSAL_SENT", "NEGOTIATION", "SOLD", "SERVICE", "CLOSED"]

CLIENTS = [
    DemoClient("+996555100001", "Emma", "Wilson", "en", "NEW_LEAD", {"formality": "casual"}, (0, "INTERESTED")),
    DemoClient("+996555100002", "Ivan", "Petrov", "ru", "QUALIFIED", {"formality": "formal", "group": "family"},
               (1, "INTERESTED")),
    DemoClient("+971501000003", "Fatima", "Al Mansouri", "ar", "WARMED", {"halal": True, "formality": "formal"},
               (2, "INTERESTED")),
    DemoClient("+33610000004", "Camille", "Durand", "fr", "PROPOSAL_SENT", {"diet": "vegetarian"}, (1, "PROPOSED")),
    DemoClient("+4915100000005", "Lukas", "Schneider", "de", "NEGOTIATION", {"punctuality": "strict"},
               (3, "SELECTED"), (7, "PROPOSED")),
    DemoClient("+34610000006", "Lucia", "Garcia", "es", "SOLD", {"group": "friends"}, (1, "BOOKED"), (5, "BOOKED")),
    DemoClient("+48500000007", "Piotr", "Nowak", "pl", "SERVICE", {"interests": ["hiking", "photography"]},
               (0, "BOOKED"), (4, "CONFIRMED")),
    DemoClient("+996555100008", "Aibek", "Toktogulov", "ru", "CLOSED", {"halal": True}, (1, "BOOKED"),
               (1, "CONFIRMED")),
    DemoClient("+14155550009", "Olivia", "Brown", "en", "QUALIFIED", {"budget": "premium"}, (5, "INTERESTED")),
    DemoClient("+971501000010", "Omar", "Haddad", "ar", "NEW_LEAD", {"halal": True, "prayer_breaks": True}),
    DemoClient("+33610000011", "Louis", "Martin", "fr", "WARMED", {}, (4, "INTERESTED")),
    DemoClient("+4915100000012", "Hannah", "Muller", "de", "SOLD", {"accessibility": "step-free"}, (2, "BOOKED"),
               (6, "BOOKED")),
    DemoClient("+34610000013", "Carlos", "Lopez", "es", "NEW_LEAD", {}),
    DemoClient("+48500000014", "Anna", "Kowalska", "pl", "PROPOSAL_SENT", {"diet": "gluten-free"}, (3, "PROPOSED")),
    DemoClient("+996555100015", "Dana", "Bekova", "ru", "NEGOTIATION", {"formality": "casual", "group": "couple"},
               (0, "SELECTED"), (8, "PROPOSED")),
]
PARTNERS = [  # name, phone, email, whatsapp, telegram, conditions, rating
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


@dataclass(frozen=True)
class DemoTour:
    note: str  # unique among the demo tours: how a later load finds the tour again
    product: int  # index into PRODUCTS (its duration gives the tour's length)
    start_day: int  # days from today (06:00 UTC); negative: in the past
    capacity: int | None  # None: no limit
    price: str | None = None  # None: the product's base price
    full: bool = False  # the capacity is set to the seats booked afterwards (UpdateTour): FULL


TOURS = [
    DemoTour("Opening weekend group", 0, -60, 12),  # past: completed, nobody booked
    DemoTour("Yurt camp week, first group", 1, -45, 16),  # past with bookings: booked, moved into the past, completed
    DemoTour("Honeymoon escape", 2, -30, 2, "2600.00"),  # past: completed
    DemoTour("Song-Kul trek, first group", 3, -20, 8),  # past: completed
    DemoTour("This weekend's group", 0, -1, 12),  # current: started yesterday, a confirmed booking
    DemoTour("Lakeside week", 1, 10, 16),
    DemoTour("Private escape for two", 2, 14, 4, full=True),
    DemoTour("Song-Kul trek with a local guide", 3, 21, 8),
    DemoTour("Weekend group with banya", 0, 28, 12),
    DemoTour("Lakeside week, second group", 1, 45, 16, "1190.00"),
    DemoTour("Silk Road group departure", 5, 60, 10),
    DemoTour("Open trek, no group limit", 3, 75, None),
]


def _past_with_bookings(index: int) -> bool:
    """A tour in the past that clients booked: booked while in the future, then moved."""
    return TOURS[index].start_day < 0 and any(c.booking and c.booking[0] == index for c in CLIENTS) and \
        TOURS[index].start_day + (PRODUCTS[TOURS[index].product][2] or 1) < 0


# Where the past tour with bookings is created (in the future, so that it can be booked)
# before its dates move into the past and it is completed.
BOOK_BEFORE_PAST_DAYS = 365

AGENT_CONFIGURATIONS = [("COMMUNICATION", "Default communication"), ("QUALIFICATION", "Budget and dates"),
                        ("PRODUCT_SELECTION", "Tour matcher")]
PROMPT_VARIANTS = [  # name, description, prompt, default for its agent type
    ("Warm and brief", "Short friendly replies", "You are a warm, brief travel assistant for Soul KG.", True),
    ("Storyteller", "Paints the trip with stories", "You tell short stories about Kyrgyzstan's places.", False),
]
EXPERIMENT_NAME = "Tone of the first reply"

DIALOGUES = [  # client index, language, lines (text, sender: None = the client, "AI", "HUMAN")
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


class Interrupted(Exception):
    """The load stopped after `call_limit` calls (tests: a load that died half-way)."""


# --- wire helpers ----------------------------------------------------------------------------

def _money(amount: str, currency: str = "USD") -> money_pb2.Money:
    value = Decimal(amount)
    units = int(value)
    return money_pb2.Money(currency_code=currency, units=units, nanos=int((value - units) * 10**9))


def _ts(value: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _struct(value: dict) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(value)
    return struct


def _mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


def reason(error: aio.AioRpcError) -> str | None:
    """The ErrorInfo reason of a failed call."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    return info.reason
    return None


def _label(enum_value: int, enum_type) -> str:
    """CLIENT_STATUS_SOLD -> SOLD (the label the tables above use)."""
    name = enum_type.Name(enum_value)
    prefix = enum_type.DESCRIPTOR.values[0].name.removesuffix("UNSPECIFIED")
    return name.removeprefix(prefix)


def _client_status(label: str) -> int:
    return crm_enums.ClientStatus.Value(f"CLIENT_STATUS_{label}")


def _booking_status(label: str) -> int:
    return cat_enums.ClientTourStatus.Value(f"CLIENT_TOUR_STATUS_{label}")


def _interest_status(label: str) -> int:
    return cat_enums.ClientProductStatus.Value(f"CLIENT_PRODUCT_STATUS_{label}")


BOOKING_FLOW = ["INTERESTED", "PROPOSED", "SELECTED", "BOOKED", "CONFIRMED"]
INTEREST_FLOW = ["INTERESTED", "PROPOSED", "SELECTED", "BOOKED"]


# --- the load ----------------------------------------------------------------------------------

async def load(addresses: Mapping[str, str], *, service_keys: Path | None = None, slug: str = SLUG, call_limit: int | None = None,
               report: Callable[[str], None] | None = None) -> bool:
    """Load the demo organization through the running services. True when it loaded (all of
    it, or the rest of a load that stopped half-way), False when it was there already.

    `addresses`: service name -> "host:port" of every service. `service_keys`: a directory with
    the private keys `webhook.key.pem` and `agents.key.pem` whose public halves identity
    trusts (`<keys dir>/services/<name>.pub.pem`): the clients' messages come in through the
    WhatsApp webhook's service token and the AI's replies go out with the agents' token, both
    from IssueServiceToken. `slug`: the organization (tests load more than one).
    `call_limit`: stop with Interrupted after that many calls (tests). `report`: told when an
    unfinished load is being finished."""
    channels = {name: aio.insecure_channel(address) for name, address in addresses.items()}
    try:
        loader = _Loader(channels, service_keys, slug, call_limit, report or (lambda _: None))
        return await loader.run()
    finally:
        for channel in channels.values():
            await channel.close()


class _Loader:
    def __init__(self, channels: Mapping[str, aio.Channel], service_keys: Path | None, slug: str, call_limit: int | None,
                 report: Callable[[str], None]) -> None:
        self.channels = channels
        self.service_keys = service_keys
        self.slug = slug
        self.call_limit = call_limit
        self.calls = 0
        self.report = report
        identity = channels["identity"]
        self.auth = identity_pb2_grpc.AuthServiceStub(identity)
        self.organizations = identity_pb2_grpc.OrganizationServiceStub(identity)
        self.users = identity_pb2_grpc.UserServiceStub(identity)
        self.clients_api = crm_pb2_grpc.ClientServiceStub(channels["crm"])
        catalog = channels["catalog"]
        self.partners_api = catalog_pb2_grpc.PartnerServiceStub(catalog)
        self.products_api = catalog_pb2_grpc.ProductServiceStub(catalog)
        self.tours_api = catalog_pb2_grpc.TourServiceStub(catalog)
        self.bookings_api = catalog_pb2_grpc.BookingServiceStub(catalog)
        self.interests_api = catalog_pb2_grpc.ClientProductServiceStub(catalog)
        agents = channels["agents"]
        self.configurations_api = agents_pb2_grpc.AgentConfigurationServiceStub(agents)
        self.variants_api = agents_pb2_grpc.PromptVariantServiceStub(agents)
        self.experiments_api = agents_pb2_grpc.ExperimentServiceStub(agents)
        self.analyses_api = agents_pb2_grpc.DialogueAnalysisServiceStub(agents)
        today = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)
        self.today = today if today <= datetime.now(UTC) else today - timedelta(days=1)
        # Filled as the load goes.
        self.admin_token = ""
        self.sessions: list[str] = []  # refresh tokens, ended when the load ends
        self.manager_tokens: list[str] = []
        self.organization_id = ""
        self.partners: list[cat.Partner] = []
        self.products: list[cat.Product] = []
        self.tours: list[cat.Tour] = []
        self.clients: list[crm_pb2.Client] = []

    # Every call goes through here: the caller's token, a deadline, the call limit of tests.
    async def call(self, method, request, token: str | None = None):
        self.step()
        metadata = [("authorization", f"Bearer {token}")] if token else None
        return await method(request, metadata=metadata, timeout=30)

    def step(self) -> None:
        if self.call_limit is not None and self.calls >= self.call_limit:
            raise Interrupted(f"stopped after {self.calls} calls")
        self.calls += 1

    def request_id(self, item: str) -> str:
        return str(uuid.uuid5(REQUEST_NAMESPACE, f"{self.slug}/{item}"))

    def manager(self, index: int) -> str:
        return self.manager_tokens[index % len(self.manager_tokens)]

    async def run(self) -> bool:
        try:
            return await self._run()
        finally:
            await self.logout()

    async def _run(self) -> bool:
        signed_up = await self.admin()
        organization = await self.call(self.organizations.GetOrganization, identity_pb2.GetOrganizationRequest(),
                                       self.admin_token)
        self.organization_id = organization.id
        if not signed_up:
            if "timezone" in organization.settings.fields:
                return False
            self.report(f"organization {self.slug} exists but its demo data is incomplete (a load stopped "
                        "half-way): finishing it")
        await self.managers()
        await self.agents()
        await self.catalog()
        await self.crm()
        await self.resolve_prompts()
        await self.messaging()
        await self.interests_and_bookings()
        await self.finish_tours()
        await self.assign_partners()
        # Last: the settings say that the organization has all of its demo data.
        await self.call(self.organizations.UpdateOrganization, identity_pb2.UpdateOrganizationRequest(
            organization=identity_pb2.Organization(settings=_struct(SETTINGS)), update_mask=_mask("settings")),
            self.admin_token)
        return True

    # --- identity --------------------------------------------------------------------------

    async def login(self, email: str) -> str | None:
        try:
            reply = await self.call(self.auth.Login, identity_pb2.LoginRequest(
                organization_slug=self.slug, email=email, password=PASSWORD))
        except aio.AioRpcError as error:
            if reason(error) == "LOGIN_FAILED":
                return None
            raise
        self.sessions.append(reply.refresh_token)
        return reply.access_token

    async def logout(self) -> None:
        """Ends the sessions this load opened (outside the call limit; best effort)."""
        for refresh_token in self.sessions:
            with contextlib.suppress(aio.AioRpcError):
                await self.auth.Logout(identity_pb2.LogoutRequest(refresh_token=refresh_token), timeout=10)

    async def admin(self) -> bool:
        """The admin's token; True when the organization was signed up now."""
        token = await self.login(ADMIN_EMAIL)
        if token is not None:
            self.admin_token = token
            return False
        try:
            reply = await self.call(self.auth.SignUp, identity_pb2.SignUpRequest(
                organization_name=ORGANIZATION_NAME, organization_slug=self.slug, email=ADMIN_EMAIL,
                password=PASSWORD, first_name=ADMIN_NAME[0], last_name=ADMIN_NAME[1]))
        except aio.AioRpcError as error:
            if reason(error) == "SLUG_TAKEN":
                raise RuntimeError(f"organization {self.slug} exists, but {ADMIN_EMAIL} cannot log in with the "
                                   "demo password: not loading demo data into it") from None
            raise
        self.admin_token = reply.access_token
        self.sessions.append(reply.refresh_token)
        return True

    async def managers(self) -> None:
        existing = {user.email for user in await self.list_all(
            self.users.ListUsers, identity_pb2.ListUsersRequest(page_size=1000), "users", self.admin_token)}
        for email, first, last in MANAGERS:
            if email not in existing:
                await self.call(self.users.CreateUser, identity_pb2.CreateUserRequest(
                    user=identity_pb2.User(email=email, first_name=first, last_name=last,
                                           role=identity_enums.USER_ROLE_MANAGER, is_active=True),
                    password=PASSWORD, request_id=self.request_id(f"user/{email}")), self.admin_token)
            token = await self.login(email)
            if token is None:
                raise RuntimeError(f"the demo manager {email} cannot log in with the demo password")
            self.manager_tokens.append(token)

    # --- agents ------------------------------------------------------------------------------

    async def agents(self) -> list[str]:
        """Configurations, the two prompt variants, the running experiment between them and an
        analysis, through the agents service; returns the two variants' ids (clients carry one)."""
        token = self.admin_token
        configurations = {(c.agent_type, c.name) for c in await self.list_all(
            self.configurations_api.ListAgentConfigurations, agents_pb2.ListAgentConfigurationsRequest(page_size=100),
            "agent_configurations", token)}
        for agent_type, name in AGENT_CONFIGURATIONS:
            kind = agents_enums.AgentType.Value(f"AGENT_TYPE_{agent_type}")
            if (kind, name) not in configurations:
                await self.call(self.configurations_api.CreateAgentConfiguration,
                                agents_pb2.CreateAgentConfigurationRequest(
                                    agent_configuration=agents_pb2.AgentConfiguration(
                                        agent_type=kind, name=name, is_active=True,
                                        prompt=f"{name}: follow the organization's tone and cultural notes.",
                                        settings=_struct({"model": "any", "temperature": 0.4})),
                                    request_id=self.request_id(f"configuration/{agent_type}/{name}")), token)
        variants = {v.name: v.id for v in await self.list_all(
            self.variants_api.ListPromptVariants, agents_pb2.ListPromptVariantsRequest(page_size=100),
            "prompt_variants", token)}
        for name, description, prompt, is_default in PROMPT_VARIANTS:
            if name not in variants:
                created = await self.call(self.variants_api.CreatePromptVariant, agents_pb2.CreatePromptVariantRequest(
                    prompt_variant=agents_pb2.PromptVariant(
                        agent_type=agents_enums.AGENT_TYPE_COMMUNICATION, name=name, description=description,
                        prompt=prompt, is_active=True, is_default=is_default),
                    request_id=self.request_id(f"variant/{name}")), token)
                variants[name] = created.id
        ids = [variants[name] for name, *_ in PROMPT_VARIANTS]
        experiments = {e.name: e for e in await self.list_all(
            self.experiments_api.ListExperiments, agents_pb2.ListExperimentsRequest(page_size=100),
            "experiments", token)}
        experiment = experiments.get(EXPERIMENT_NAME)
        if experiment is None:
            experiment = await self.call(self.experiments_api.CreateExperiment, agents_pb2.CreateExperimentRequest(
                experiment=agents_pb2.Experiment(
                    agent_type=agents_enums.AGENT_TYPE_COMMUNICATION, name=EXPERIMENT_NAME,
                    description="Warm-and-brief against storyteller",
                    variants=[agents_pb2.ExperimentVariant(prompt_variant_id=ids[0], weight=50, control=True),
                              agents_pb2.ExperimentVariant(prompt_variant_id=ids[1], weight=50)]),
                request_id=self.request_id("experiment")), token)
        if not experiment.HasField("start_time"):
            await self.call(self.experiments_api.StartExperiment,
                            agents_pb2.StartExperimentRequest(id=experiment.id), token)
        analyses = await self.list_all(self.analyses_api.ListDialogueAnalyses,
                                       agents_pb2.ListDialogueAnalysesRequest(page_size=100), "dialogue_analyses",
                                       token)
        if not analyses:
            recommendations = struct_pb2.Value()
            recommendations.list_value.values.add().string_value = "Ask for travel dates in the first reply"
            await self.call(self.analyses_api.CreateDialogueAnalysis, agents_pb2.CreateDialogueAnalysisRequest(
                dialogue_analysis=agents_pb2.DialogueAnalysis(
                    analysis_type=agents_enums.ANALYSIS_TYPE_CONVERSION_METRICS, prompt_variant_id=ids[0],
                    data=_struct({"conversations": len(DIALOGUES), "qualified": 2}),
                    recommendations=recommendations),
                request_id=self.request_id("analysis")), token)
        return ids

    # --- catalog: partners, products, tours ---------------------------------------------------

    async def list_all(self, method, request, field: str, token: str) -> list:
        items = []
        while True:
            reply = await self.call(method, request, token)
            items.extend(getattr(reply, field))
            if not reply.next_page_token:
                return items
            request.page_token = reply.next_page_token

    async def catalog(self) -> None:
        token = self.admin_token
        partners = {p.name: p for p in await self.list_all(
            self.partners_api.ListPartners, cat.ListPartnersRequest(page_size=1000), "partners", token)}
        for name, phone, email, whatsapp, telegram, conditions, rating in PARTNERS:
            if name not in partners:
                partners[name] = await self.call(self.partners_api.CreatePartner, cat.CreatePartnerRequest(
                    partner=cat.Partner(name=name, contact_phone=phone, contact_email=email,
                                        contact_whatsapp=whatsapp, contact_telegram=telegram,
                                        conditions=conditions, rating=rating, is_available=True),
                    request_id=self.request_id(f"partner/{name}")), token)
            self.partners.append(partners[name])

        products = {p.name: p for p in await self.list_all(
            self.products_api.ListProducts, cat.ListProductsRequest(page_size=1000), "products", token)}
        for name, description, days, kind, price, partner, inclusions, exclusions, options in PRODUCTS:
            if name not in products:
                products[name] = await self.call(self.products_api.CreateProduct, cat.CreateProductRequest(
                    product=cat.Product(
                        name=name, description=description, duration_days=days,
                        type=cat_enums.ProductType.Value(f"PRODUCT_TYPE_{kind}"), base_price=_money(price),
                        partner_id=self.partners[partner].id if partner is not None else None,
                        inclusions=inclusions, exclusions=exclusions, options=_struct(options), is_active=True),
                    request_id=self.request_id(f"product/{name}")), token)
            self.products.append(products[name])

        tours = {t.notes: t for t in await self.list_all(
            self.tours_api.ListTours, cat.ListToursRequest(page_size=1000), "tours", token)}
        for index, plan in enumerate(TOURS):
            tour = tours.get(plan.note)
            start, end = self.dates(plan)
            if tour is None:
                if _past_with_bookings(index):  # booked first, moved into the past later
                    start += timedelta(days=BOOK_BEFORE_PAST_DAYS)
                    end += timedelta(days=BOOK_BEFORE_PAST_DAYS)
                tour = await self.call(self.tours_api.CreateTour, cat.CreateTourRequest(
                    tour=cat.Tour(product_id=self.products[plan.product].id, start_time=_ts(start),
                                  end_time=_ts(end), max_participants=plan.capacity,
                                  price=_money(plan.price) if plan.price else None, notes=plan.note),
                    request_id=self.request_id(f"tour/{plan.note}")), token)
            if end < self.today and not _past_with_bookings(index):
                tour = await self.complete(tour)
            self.tours.append(tour)

    def dates(self, plan: DemoTour) -> tuple[datetime, datetime]:
        start = self.today + timedelta(days=plan.start_day)
        return start, start + timedelta(days=PRODUCTS[plan.product][2] or 1, hours=12)

    async def complete(self, tour: cat.Tour) -> cat.Tour:
        if tour.status == cat_enums.TOUR_STATUS_COMPLETED:
            return tour
        return await self.call(self.tours_api.CompleteTour, cat.CompleteTourRequest(id=tour.id), self.admin_token)

    # --- crm: clients and their statuses ------------------------------------------------------

    async def crm(self) -> None:
        existing = {c.phone: c for c in await self.list_all(
            self.clients_api.ListClients, crm_pb2.ListClientsRequest(page_size=1000), "clients", self.admin_token)}
        for index, plan in enumerate(CLIENTS):
            token = self.manager(index)
            client = existing.get(plan.phone)
            if client is None:
                client = await self.call(self.clients_api.CreateClient, crm_pb2.CreateClientRequest(
                    client=crm_pb2.Client(
                        phone=plan.phone, first_name=plan.first_name, last_name=plan.last_name,
                        preferred_language=plan.language, cultural_context=_struct(plan.cultural_context),
                        metadata=_struct({"source": "demo"})),
                    request_id=self.request_id(f"client/{plan.phone}")), token)
            # Along the funnel, one step at a time, as the manager: the history shows each move.
            current = FUNNEL.index(_label(client.status, crm_enums.ClientStatus))
            for status in FUNNEL[current + 1:FUNNEL.index(plan.status) + 1]:
                client = await self.call(self.clients_api.ChangeClientStatus, crm_pb2.ChangeClientStatusRequest(
                    id=client.id, status=_client_status(status), reason="demo data"), token)
            self.clients.append(client)

    # --- messaging -----------------------------------------------------------------------------

    async def resolve_prompts(self) -> None:
        """The AI agent asks for each client's prompt, as it would on its first turn: the
        running experiment assigns the client a variant (sticky) and agents mirrors it into the
        client's prompt_variant_id in crm."""
        agent = await self.service_token("agents")
        prompts_api = agents_pb2_grpc.PromptServiceStub(self.channels["agents"])
        for client in self.clients:
            await self.call(prompts_api.ResolvePrompt, agents_pb2.ResolvePromptRequest(
                client_id=client.id, agent_type=agents_enums.AGENT_TYPE_COMMUNICATION), agent)

    async def service_token(self, service: str) -> str:
        """A service token of `service` for the organization, from identity's exchange of an
        assertion signed with the service's own key."""
        if self.service_keys is None:
            raise ValueError(f"the demo data needs the {service} service's private key (service_keys)")
        assertion = sign_assertion(load_service_key(self.service_keys / f"{service}.key.pem"), service,
                                   self.organization_id)
        reply = await self.call(self.auth.IssueServiceToken, identity_pb2.IssueServiceTokenRequest(
            organization_id=self.organization_id, service_name=service, assertion=assertion))
        return reply.access_token

    async def messaging(self) -> None:
        """The dialogues as they happen: the client's lines through the WhatsApp webhook
        (IngestInboundMessage with its service token), the AI's replies with the agents'
        token, the human's after the manager takes the conversation over (a hand-off); then
        the WhatsApp session, paired once and disconnected (no phone behind the demo)."""
        channel = self.channels["messaging"]
        conversations_api = messaging_pb2_grpc.ConversationServiceStub(channel)
        messages_api = messaging_pb2_grpc.MessageServiceStub(channel)
        sessions_api = messaging_pb2_grpc.WhatsAppSessionServiceStub(channel)
        webhook, agent = await self.service_token("webhook"), await self.service_token("agents")
        conversations: dict[str, msg.Conversation] = {}
        for conversation in await self.list_all(conversations_api.ListConversations, msg.ListConversationsRequest(
                page_size=1000), "conversations", self.admin_token):
            conversations.setdefault(conversation.client_id, conversation)  # the latest one
        for client_index, _language, lines in DIALOGUES:
            client, manager = self.clients[client_index], self.manager(client_index)
            conversation = conversations.get(client.id)
            stored = [] if conversation is None else await self.list_all(
                messages_api.ListMessages, msg.ListMessagesRequest(conversation_id=conversation.id, page_size=1000),
                "messages", self.admin_token)
            incoming = messaging_enums.MESSAGE_DIRECTION_INCOMING
            inbound = {m.external_message_id for m in stored if m.direction == incoming}
            outbound = {m.content: m for m in stored if m.direction != incoming}
            for position, (content, sender) in enumerate(lines):
                if sender is None:
                    external_id = f"demo-{client_index}-{position}"
                    if external_id not in inbound:
                        conversation = (await self.call(messages_api.IngestInboundMessage,
                                                        msg.IngestInboundMessageRequest(
                            channel=messaging_enums.COMMUNICATION_CHANNEL_WHATSAPP, from_phone=client.phone,
                            content=content, external_message_id=external_id, contact_name=client.first_name),
                            webhook)).conversation
                    continue
                message = outbound.get(content)
                if message is None:
                    if sender == "HUMAN" and conversation.managed_by != messaging_enums.CONVERSATION_MANAGER_HUMAN:
                        conversation = (await self.call(conversations_api.HandOffConversation,
                                                        msg.HandOffConversationRequest(
                            id=conversation.id, to=messaging_enums.CONVERSATION_MANAGER_HUMAN,
                            reason="the client asks about food: a manager answers"), manager)).conversation
                    message = await self.call(messages_api.SendMessage, msg.SendMessageRequest(
                        conversation_id=conversation.id, content=content,
                        request_id=self.request_id(f"message/{client.phone}/{position}")),
                        manager if sender == "HUMAN" else agent)
                if message.status == messaging_enums.MESSAGE_STATUS_SENT and message.external_message_id:
                    # WhatsApp's delivery report, through the webhook.
                    await self.call(messages_api.UpdateMessageStatus, msg.UpdateMessageStatusRequest(
                        external_message_id=message.external_message_id,
                        status=msg.DeliveryStatus.DELIVERY_STATUS_DELIVERED), webhook)
        session = await self.call(sessions_api.GetWhatsAppSession, msg.GetWhatsAppSessionRequest(), self.admin_token)
        if not session.HasField("update_time"):
            session = await self.call(sessions_api.ConnectWhatsApp, msg.ConnectWhatsAppRequest(), self.admin_token)
        if session.status == messaging_enums.WHATS_APP_SESSION_STATUS_CONNECTING:
            await self.call(sessions_api.DisconnectWhatsApp, msg.DisconnectWhatsAppRequest(), self.admin_token)

    # --- catalog: interests, bookings, the tours' final shape --------------------------------------

    async def interests_and_bookings(self) -> None:
        token = self.admin_token
        interests = {(i.client_id, i.product_id): i for i in await self.list_all(
            self.interests_api.ListClientProducts, cat.ListClientProductsRequest(page_size=1000),
            "client_products", token)}
        bookings = {(b.client_id, b.tour_id): b for b in await self.list_all(
            self.bookings_api.ListBookings, cat.ListBookingsRequest(page_size=1000), "bookings", token)}
        for index, (plan, client) in enumerate(zip(CLIENTS, self.clients, strict=True)):
            token = self.manager(index)
            if plan.interest is not None:
                product, status = plan.interest
                await self.interest(client, self.products[product], status,
                                    interests.get((client.id, self.products[product].id)), token)
            if plan.booking is not None:
                tour, status = plan.booking
                await self.booking(client, self.tours[tour], status, bookings.get((client.id, self.tours[tour].id)),
                                   token)

    async def interest(self, client: crm_pb2.Client, product: cat.Product, target: str,
                       interest: cat.ClientProduct | None, token: str) -> None:
        if interest is None:
            interest = await self.call(self.interests_api.CreateClientProduct, cat.CreateClientProductRequest(
                client_product=cat.ClientProduct(client_id=client.id, product_id=product.id),
                request_id=self.request_id(f"interest/{client.phone}/{product.name}")), token)
        current = _label(interest.status, cat_enums.ClientProductStatus)
        if INTEREST_FLOW.index(current) < INTEREST_FLOW.index(target):
            await self.call(self.interests_api.ChangeClientProductStatus, cat.ChangeClientProductStatusRequest(
                id=interest.id, status=_interest_status(target)), token)

    async def booking(self, client: crm_pb2.Client, tour: cat.Tour, target: str, booking: cat.Booking | None,
                      token: str) -> None:
        """As the catalog says: seats through BookTour (then CONFIRMED for a client in
        service), a proposal as an interest (CreateBooking) moved to PROPOSED."""
        current = _label(booking.status, cat_enums.ClientTourStatus) if booking is not None else None
        if target in ("BOOKED", "CONFIRMED"):
            if current not in ("BOOKED", "CONFIRMED"):
                reply = await self.call(self.bookings_api.BookTour, cat.BookTourRequest(
                    tour_id=tour.id, client_id=client.id, participants=2, notes="demo data",
                    request_id=self.request_id(f"booktour/{client.phone}/{tour.notes}")), token)
                booking, current = reply.booking, "BOOKED"
        elif booking is None:
            booking = await self.call(self.bookings_api.CreateBooking, cat.CreateBookingRequest(
                booking=cat.Booking(client_id=client.id, tour_id=tour.id, participants=2, notes="demo data"),
                request_id=self.request_id(f"booking/{client.phone}/{tour.notes}")), token)
            current = "INTERESTED"
        if current != "CANCELLED" and BOOKING_FLOW.index(current) < BOOKING_FLOW.index(target):
            await self.call(self.bookings_api.ChangeBookingStatus, cat.ChangeBookingStatusRequest(
                id=booking.id, status=_booking_status(target)), token)

    async def finish_tours(self) -> None:
        """A tour made FULL by a capacity equal to its booked seats; the past tour with
        bookings moved into the past and completed."""
        token = self.admin_token
        for index, plan in enumerate(TOURS):
            tour = self.tours[index]
            if not (plan.full or _past_with_bookings(index)):
                continue
            tour = await self.call(self.tours_api.GetTour, cat.GetTourRequest(id=tour.id), token)
            if plan.full and tour.status == cat_enums.TOUR_STATUS_AVAILABLE and tour.current_participants:
                tour = await self.call(self.tours_api.UpdateTour, cat.UpdateTourRequest(
                    tour=cat.Tour(id=tour.id, max_participants=tour.current_participants),
                    update_mask=_mask("max_participants")), token)
            start, end = self.dates(plan)
            if end < self.today and tour.status != cat_enums.TOUR_STATUS_COMPLETED:
                if tour.end_time.ToDatetime(UTC) > self.today:
                    tour = await self.call(self.tours_api.UpdateTour, cat.UpdateTourRequest(
                        tour=cat.Tour(id=tour.id, start_time=_ts(start), end_time=_ts(end)),
                        update_mask=_mask("start_time", "end_time")), token)
                tour = await self.complete(tour)
            self.tours[index] = tour

    async def assign_partners(self) -> None:
        """Clients who bought a tour are assigned the partner who runs it."""
        for index, (plan, client) in enumerate(zip(CLIENTS, self.clients, strict=True)):
            if plan.booking is None or plan.status not in ("SOLD", "SERVICE", "CLOSED"):
                continue
            partner = self.products[TOURS[plan.booking[0]].product].partner_id
            if partner and client.assigned_partner_id != partner:
                self.clients[index] = await self.call(self.clients_api.UpdateClient, crm_pb2.UpdateClientRequest(
                    client=crm_pb2.Client(id=client.id, assigned_partner_id=partner),
                    update_mask=_mask("assigned_partner_id")), self.manager(index))


