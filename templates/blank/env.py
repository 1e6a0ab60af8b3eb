from hud import Environment
env = Environment(name="letter-count")

@env.template()
async def count_letter(word: str = "strawberry", letter: str = "r"):
    answer = yield f"How many '{letter}'s are in '{word}'? Reply with just the number."
    yield 1.0 if answer and str(word.count(letter)) in answer else 0.0

tasks = [count_letter(word=w) for w in ("strawberry", "raspberry", "blueberry")]


@count_letter.solution
def solve(word: str, letter: str) -> str:
    """The reference answer: what `hud eval . oracle` submits."""
    return str(word.count(letter))
