from hud import Environment, graders
env = Environment(name="letter-count")

@env.template()
async def count_letter(word: str = "strawberry", letter: str = "r"):
    answer = yield f"How many '{letter}'s are in '{word}'? Reply with just the number."
    yield graders.exact_answer(answer, word.count(letter))

tasks = [count_letter(word=w) for w in ("strawberry", "raspberry", "blueberry")]


@count_letter.solution
def solve(word: str, letter: str) -> str:
    """The reference answer: what `hud eval . oracle` submits."""
    return str(word.count(letter))
