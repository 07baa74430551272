"""Vocabulary of the demo world: people's names per country, mailings, links, bounce reasons.

Estonian names keep their letters (õ, ä, ö, ü, š, ž) so every step is exercised on non-ASCII text.
"""

COUNTRIES = ("NL", "BE", "EE")
COUNTRY_WEIGHTS = (0.5, 0.25, 0.25)
# the mailbox providers people of each country use (three each: the world draws one of three); nothing is ever
# sent to them, the demo world lives on the stand-ins
MAIL_DOMAINS = {
    "NL": ("ziggo.nl", "kpnmail.nl", "gmail.com"),
    "BE": ("gmail.com", "telenet.be", "outlook.com"),
    "EE": ("gmail.com", "mail.ee", "hotmail.com"),
}
LANGUAGES = {"NL": "nl", "BE": "nl", "EE": "et"}

FIRST_NAMES = {
    "NL": (
        "Jan",
        "Sanne",
        "Pieter",
        "Femke",
        "Daan",
        "Lotte",
        "Bram",
        "Anouk",
        "Sem",
        "Eva",
        "Thijs",
        "Noor",
        "Ruben",
        "Iris",
        "Lucas",
        "Fleur",
        "Joris",
        "Maud",
        "Gijs",
        "Roos",
    ),
    "BE": (
        "Wouter",
        "Elke",
        "Stijn",
        "Lien",
        "Jens",
        "Ine",
        "Arne",
        "Hanne",
        "Pieterjan",
        "Lore",
        "Matthias",
        "Ann-Sophie",
        "Kobe",
        "Sofie",
        "Brecht",
        "Zoë",
        "Thibault",
        "Chloé",
        "Senne",
        "Fien",
    ),
    "EE": (
        "Tõnu",
        "Mari",
        "Jüri",
        "Ülle",
        "Märt",
        "Kädi",
        "Priit",
        "Liis",
        "Andres",
        "Triin",
        "Tõnis",
        "Kätlin",
        "Rasmus",
        "Maarja",
        "Siim",
        "Õie",
        "Kaarel",
        "Helle",
        "Jaanus",
        "Külli",
    ),
}
LAST_NAMES = {
    "NL": (
        "de Vries",
        "Jansen",
        "van den Berg",
        "Bakker",
        "Visser",
        "Smit",
        "Meijer",
        "de Boer",
        "Mulder",
        "de Groot",
        "Bos",
        "Vos",
        "Peters",
        "Hendriks",
        "van Dijk",
        "Dekker",
    ),
    "BE": (
        "Peeters",
        "Janssens",
        "Maes",
        "Jacobs",
        "Mertens",
        "Willems",
        "Claes",
        "Goossens",
        "Wouters",
        "De Smet",
        "Dubois",
        "Lambert",
        "Vermeulen",
        "Desmet",
        "Van Damme",
        "Lemaire",
    ),
    "EE": (
        "Tamm",
        "Saar",
        "Sepp",
        "Mägi",
        "Kask",
        "Kukk",
        "Rebane",
        "Ilves",
        "Pärn",
        "Koppel",
        "Lepik",
        "Kõiv",
        "Järve",
        "Põder",
        "Šmidt",
        "Lõhmus",
    ),
}
# ASCII spellings for e-mail local parts (mail platforms rarely see non-ASCII addresses).
TRANSLITERATION = str.maketrans(
    {
        "õ": "o",
        "ä": "a",
        "ö": "o",
        "ü": "u",
        "š": "s",
        "ž": "z",
        "é": "e",
        "ë": "e",
        "Õ": "O",
        "Ä": "A",
        "Ö": "O",
        "Ü": "U",
        "Š": "S",
        "Ž": "Z",
        "É": "E",
        " ": "",
        "-": "",
    }
)

CITIES = {
    "NL": ("Amsterdam", "Utrecht", "Rotterdam", "Den Haag", "Groningen", "Zwolle", "Eindhoven"),
    "BE": ("Antwerpen", "Gent", "Leuven", "Brugge", "Hasselt", "Mechelen", "Brussel"),
    "EE": ("Tallinn", "Tartu", "Pärnu", "Narva", "Viljandi", "Rakvere", "Kuressaare"),
}
EE_COUNTIES = ("Harjumaa", "Tartumaa", "Pärnumaa", "Ida-Virumaa", "Viljandimaa", "Lääne-Virumaa", "Saaremaa")

DIRECTO_CLASSES = ("ERAKLIENT", "ÄRIKLIENT", "VIP", "PARTNER")
DIRECTO_CLASS_WEIGHTS = (0.62, 0.25, 0.08, 0.05)

NEWSLETTER_TOPICS = (
    "Nieuwsbrief",
    "Zomeractie",
    "Black Friday",
    "Nieuwe collectie",
    "Wintersale",
    "Klantendag",
    "Productnieuws",
    "Tips & tricks",
    "Uitnodiging webinar",
    "Last minute deals",
    "Sügisesed pakkumised",
    "Jõuluootus",
    "Verjaardagsweek",
    "Outlet",
    "Cadeautips",
)
SUBJECT_TEMPLATES = (
    "{topic}: ontdek wat er nieuw is",
    "{topic} – alleen deze week",
    "Jouw {topic} van deze maand",
    "{topic}: tot 40% korting",
    "Mis het niet: {topic}",
    "{topic} · ära maga maha!",
)
SENDERS = ("Marketing Team", "Anouk de Groot", "Märt Tamm", "Webshop Redactie")
TARGET_GROUPS = ("Alle abonnees", "Actieve klanten", "Nederland", "België", "Eesti", "VIP-klanten")
LINK_KINDS = (
    # (name, url path, Spotler link type)
    ("Bekijk de collectie", "/collectie", None),
    ("Shop nu", "/shop", "webshop"),
    ("Lees meer", "/blog/artikel", None),
    ("Bestel direct", "/bestel", "conversion"),
    ("Facebook", "https://www.facebook.com/example", "facebook"),
    ("Online versie", "/online", "openhtml"),
    ("Afmelden", "/afmelden", "unsubscribe"),
    ("Gegevens wijzigen", "/profiel", "editprofile"),
)
WEBSITE = "https://www.example-shop.nl"

HARD_BOUNCE_REASONS = (
    "550 5.1.1 User unknown",
    "550 5.1.10 Recipient address rejected",
    "553 5.1.2 Domain does not exist",
)
SOFT_BOUNCE_REASONS = ("452 4.2.2 Mailbox full", "421 4.7.0 Try again later", "450 4.2.1 Mailbox busy")
COMPLAINT_REASON = "abuse: feedback loop report"

CAMPAIGNS = (
    # (name, [(mailing name, type, days after trigger)], trigger)
    (
        "Welkomstreeks",
        (
            ("Welkom 1: leuk dat je er bent", "EMAIL", 0.0),
            ("Welkom 2: onze favorieten", "EMAIL", 3.0),
            ("Welkom 3: jouw voordeel", "EMAIL", 10.0),
        ),
        "joined",
    ),
    ("Verjaardag", (("Gefeliciteerd!", "EMAIL", 0.0),), "birthday"),
    (
        "Verlaten winkelwagen",
        (("Vergeten af te rekenen?", "EMAIL", 0.05), ("Je winkelwagen wacht", "SMS", 1.0)),
        "cart",
    ),
)
# Campaigns that only an external trigger starts (the warehouse's segments, `warehouse export`): they have
# sent nothing in the world yet. (name, the external trigger's name)
EXTERNALLY_TRIGGERED_CAMPAIGNS = (("Reactivatie", "reactivatie"),)
FORMS = (
    # (form id, name, sub type, state)
    (101, "Nieuwsbrief aanmelding", "subscribe", "final"),
    (102, "Afmelden nieuwsbrief", "unSubscribe", "final"),
    (103, "Klanttevredenheid 2026", "normal", "final"),
    (104, "Profiel bijwerken", "editProfile", "draft"),
)
SURVEY_QUESTIONS = (
    (1, 11, "Hoe tevreden ben je over onze service?", ("Zeer tevreden", "Tevreden", "Neutraal", "Ontevreden")),
    (2, 12, "Zou je ons aanbevelen?", ("Ja", "Misschien", "Nee")),
    (3, 13, "Opmerkingen", ("", "Snelle levering!", "Väga hea teenindus", "Graag meer acties")),
)
