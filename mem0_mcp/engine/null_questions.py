"""Questions a memory of a person rarely answers: the sample from which each scope's default
relevance gate is measured (engine/gate.py).

How high the best result of an unanswerable question scores depends on the scope: a few short
facts leave little to match (the best of three facts: ~0.12 for an off-topic question), hundreds
of turns of a conversation a lot more (~0.35 at 600 turns), a store of twenty facts in between
(~0.28). A fixed gate is too strict for a small store or too lenient for a large one. Asking these
questions in the scope itself measures what "nothing relevant" scores there.

Written for this purpose, apart from the off-topic questions the benchmark measures the gate
with (benchmarks/data/off_topic.json): about the person (attributes a memory seldom holds), about
work, about the world, and how-to requests. Some of them will be answered by some scope (a
conversation about charity work); the gate is a high quantile of their scores, so a few answered
ones do not move it.
"""

NULL_QUESTIONS = (
    # Questions about a person that a memory usually holds no answer to.
    "What is the user's middle name?",
    "Which hospital was the user born in?",
    "What is the user's favourite kind of bread?",
    "How many cousins does the user have?",
    "What size of T-shirt does the user wear?",
    "Which eye drops does the user use?",
    "What is the user's phone's lock screen picture?",
    "What was the user's first email address?",
    "Which brand of toothpaste does the user buy?",
    "How often does the user get a haircut?",
    "What is the user's preferred mattress firmness?",
    "Which newspaper does the user subscribe to?",
    "What is the user's favourite vegetable?",
    "What is the user's favourite number?",
    "Which chair does the user sit on at work?",
    "What is the user's preferred way to pay at restaurants?",
    "Does the user wear glasses or contact lenses?",
    "What is the user's least favourite chore?",
    "Which streaming service does the user pay for?",
    "What colour is the user's front door?",
    "What is the user's favourite smell?",
    "How many houseguests can the user's flat sleep?",
    "What is the user's preferred shampoo?",
    "Which charity did the user donate to last?",
    "What is the user's favourite breakfast cereal?",
    "What does the user keep in the glovebox?",
    "Which email client does the user prefer?",
    "What is the user's zodiac sign?",
    "Which way does the user fold towels?",
    "What is the user's go-to karaoke song?",
    "Which allergy medication does the user take?",
    "How many keys are on the user's keyring?",
    # Questions about work and projects that a memory usually holds no answer to.
    "Which message queue does the billing service use?",
    "What is the retention period of the audit logs?",
    "Who approves expense reports on the team?",
    "Which port does the metrics exporter listen on?",
    "What is the naming convention for feature branches?",
    "Which region is the disaster recovery site in?",
    "How long is the code review turnaround target?",
    "What is the on-call rotation schedule?",
    "Which vendor supplies the office printers?",
    "What is the budget code for travel?",
    "Which dashboard shows the error rate?",
    "What is the maximum upload size of the API?",
    "Which font does the company style guide use?",
    "What is the password policy for service accounts?",
    "Who is the point of contact at the payment provider?",
    "Which test coverage threshold does the build enforce?",
    # Questions about the world that a memory of a person does not answer.
    "What is the boiling point of ethanol?",
    "Who discovered penicillin?",
    "How many bones are in the human body?",
    "What is the currency of Switzerland?",
    "Who composed the Four Seasons?",
    "How deep is the Mariana Trench?",
    "What is the chemical symbol for tungsten?",
    "When did the first Moon landing happen?",
    "What is the longest river in Europe?",
    "How many strings does a standard guitar have?",
    "Which planet has the most moons?",
    "What is the square root of 144?",
    "Who wrote Pride and Prejudice?",
    "What language is spoken in Brazil?",
    "How many time zones does Russia span?",
    "What is the largest desert in the world?",
    "Who invented the telephone?",
    "What is the speed of sound in air?",
    "How many players are on a rugby union team?",
    "Which element has atomic number 1?",
    "What is the capital of Kenya?",
    "How long does it take light to reach Earth from the Sun?",
    "What is the tallest building in the world?",
    "Which ocean is the deepest?",
    # How-to and requests an assistant gets that are not about the person.
    "How do I remove a red wine stain?",
    "How do I change a car's oil?",
    "How do you make mayonnaise from scratch?",
    "How do I write a cover letter?",
    "How do I set up two-factor authentication?",
    "How do I descale a kettle?",
    "How should I store fresh herbs?",
    "How do I reverse a linked list?",
    "How do you tie a bowline knot?",
    "How do I calculate compound interest?",
    "How do I unclog a drain without chemicals?",
    "How do I sharpen a kitchen knife?",
    "What is a good stretching routine for the lower back?",
    "How do I merge two PDF files?",
    "How long should I steep green tea?",
    "How do I repot an orchid?",
)
