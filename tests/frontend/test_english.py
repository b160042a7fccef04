"""English normalisation, table-driven: what the front end says for each kind of written form.

Each row is (text, spoken). The grammar is NeMo's (compiled once into the CI cache); phone
numbers, codes, street abbreviations, versions, data units and currency codes are this
project's rewrites ahead of it (voxline/synthesis/frontend/rules.py).
"""

from __future__ import annotations

import pytest

CASES = [
    ("It costs $5.", "It costs five dollars."),
    ("It costs $1,249.50 today.",
     "It costs one thousand two hundred and forty nine dollars fifty cents today."),
    ("That is $0.99 only.", "That is ninety nine cents only."),
    ("Pay $12 now.", "Pay twelve dollars now."),
    ("It was $3.5 million.", "It was three point five million dollars."),
    ("Send €30 please.", "Send thirty euros please."),
    ("It costs £12.99.", "It costs twelve pounds ninety nine pence."),
    ("That is ¥500.", "That is five hundred yen."),
    ("It was 20 USD.", "It was twenty dollars."),
    ("It was EUR 15.50.", "It was fifteen euros fifty cents."),
    ("About 45% more.", "About forty five percent more."),
    ("Only 0.5% left.", "Only zero point five percent left."),
    ("Pi is 3.14.", "Pi is three point one four."),
    ("It weighs 2.5kg.", "It weighs two point five kilograms."),
    ("It is 10 kg.", "It is ten kilograms."),
    ("Walk 5 km.", "Walk five kilometers."),
    ("It is 100 km/h.", "It is one hundred kilometers per hour."),
    ("Drive 60 mph.", "Drive sixty miles per hour."),
    ("It is 6 ft tall.", "It is six feet tall."),
    ("Add 250 ml of milk.", "Add two hundred and fifty milliliters of milk."),
    ("It is -5°C outside.", "It is minus five degrees Celsius outside."),
    ("The file is 3.5 MB.", "The file is three point five megabytes."),
    ("Buy 5GB of data.", "Buy five gigabytes of data."),
    ("It is 1.5x faster.", "It is one point five times faster."),
    ("Meet on 12/03/2026.", "Meet on december third twenty twenty six."),
    ("Meet on 2026-12-03.", "Meet on december third twenty twenty six."),
    ("Meet on Dec. 3, 2026.", "Meet on december third, twenty twenty six."),
    ("Meet on December 3, 2026.", "Meet on december third, twenty twenty six."),
    ("Born on 3 December 2026.", "Born on the third of december twenty twenty six."),
    ("It was in 1995.", "It was in nineteen ninety five."),
    ("Back in the 1990s.", "Back in the nineteen nineties."),
    ("It is 3:30pm.", "It is three thirty PM."),
    ("Come at 10 am.", "Come at ten AM."),
    ("Come at 7:05 PM.", "Come at seven o five PM."),
    ("Leave at 14:45.", "Leave at fourteen forty five."),
    ("The 21st century.", "The twenty first century."),
    ("On the 3rd floor.", "On the third floor."),
    ("The 2nd of May.", "The second of May."),
    ("He came 1st.", "He came first."),
    ("The 100th day.", "The one hundredth day."),
    ("Call 555-0142.", "Call five five five, zero one four two."),
    ("Call (555) 123-4567.", "Call five five five, one two three, four five six seven."),
    ("Call +1 800 555 0142.", "Call plus one, eight zero zero, five five five, zero one four two."),
    ("Call 1-800-555-0142.", "Call one, eight zero zero, five five five, zero one four two."),
    ("Call 555.123.4567.", "Call five five five, one two three, four five six seven."),
    ("Call +44 20 7946 0958.",
     "Call plus four four, two zero, seven nine four six, zero nine five eight."),
    ("Write to help@example.com today.", "Write to help at example dot com today."),
    ("Write to john.smith@mail.org now.", "Write to john dot smith at mail dot org now."),
    ("Visit https://www.example.com/help now.",
     "Visit HTTPS colon slash slash WWW dot example dot com slash help now."),
    ("Visit www.example.com today.", "Visit WWW dot example dot com today."),
    ("The code is K7-42B.", "The code is K seven, four two B."),
    ("Your code is AB12CD.", "Your code is A, B one two C D."),
    ("Flight BA2490 departs.", "Flight B A, two four nine zero departs."),
    ("Use code X5.", "Use code X five."),
    ("Mr. Smith is here.", "mister Smith is here."),
    ("Mrs. Jones called.", "misses Jones called."),
    ("Dr. Jones is in.", "Doctor Jones is in."),
    ("Turn onto Mulholland Dr. now.", "Turn onto Mulholland Drive now."),
    ("I live on Baker St. in London.", "I live on Baker Street in London."),
    ("Meet me at 221B Baker St., apt. 4.",
     "Meet me at two hundred twenty one B Baker Street, apartment four."),
    ("We flew to St. Louis.", "We flew to Saint Louis."),
    ("Visit St. Paul today.", "Visit Saint Paul today."),
    ("Go to 5th Ave. today.", "Go to fifth Avenue today."),
    ("Take Elm Rd. north.", "Take Elm Road north."),
    ("It is approx. 10 miles.", "It is approximately ten miles."),
    ("Tom & Jerry are here.", "Tom and Jerry are here."),
    ("Cats vs. dogs.", "Cats versus dogs."),
    ("Bring pens, paper, etc.", "Bring pens, paper, etcetera."),
    ("Order #12345 is ready.", "Order number one two three four five is ready."),
    ("No. 5 is ready.", "number five is ready."),
    ("Version 2.0.1 is out.", "Version two point zero point one is out."),
    ("Room 12B is free.", "Room twelve B is free."),
    ("He scored 7-5.", "He scored seven-five."),
    ("Add 1/2 cup.", "Add one half cup."),
    ("Walk 3/4 mile.", "Walk three quarters mile."),
    ("I have 3 cats.", "I have three cats."),
    ("I have 1,000,000 reasons.", "I have one million reasons."),
    ("It is 0.75 long.", "It is zero point seven five long."),
    ("Count to 21.", "Count to twenty one."),
    ("I am 42 years old.", "I am forty two years old."),
    ("Page 1 of 10.", "Page one of ten."),
    ("World War II ended.", "World War two ended."),
    ("It fell by -3.", "It fell by minus three."),
    ("Hello world, how are you?", "Hello world, how are you?"),
    ("Thank you for calling.", "Thank you for calling."),
    ("Your order has shipped.", "Your order has shipped."),
    ("The total is $45.10, due on 01/15/2027 at 5pm.",
     "The total is forty five dollars ten cents, due on january fifteenth twenty twenty "
     "seven at five PM."),
    ("Call us at 555-0142 before 6:30 pm on Friday.",
     "Call us at five five five, zero one four two before six thirty PM on Friday."),
    ("Your balance is $1,000.", "Your balance is one thousand dollars."),
    ("Ticket T-1000 is open.", "Ticket T, one zero zero zero is open."),
    ("Gate B22 at 9:15.", "Gate B two two at nine fifteen."),
    ("It is 98.6°F.", "It is ninety eight point six degrees Fahrenheit."),
]


def test_the_table_is_large_enough():
    assert len(CASES) >= 80


@pytest.mark.parametrize(("text", "spoken"), CASES, ids=[c[0] for c in CASES])
def test_english(front_end, text, spoken):
    assert front_end.process(text, language="en").text == spoken


def test_regional_tags_use_the_language_grammar(front_end):
    assert front_end.process("It costs $5.", language="en-US").text == "It costs five dollars."


def test_normalize_false_leaves_the_text_to_the_engine(front_end):
    text = "Call 555-0142 about $1,249.50 on Baker St."
    assert front_end.process(text, language="en", normalize=False).text == text
