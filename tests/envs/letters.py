from hud import Environment

# Nothing is shared between its tasks: the tests run groups of it at once in one process.
env = Environment(name="letter-count", concurrency=64)


@env.template()
async def count_letter(word: str = "strawberry", letter: str = "r"):
    answer = yield f"How many '{letter}'s are in '{word}'? Reply with just the number."
    yield 1.0 if answer and str(word.count(letter)) in answer else 0.0


tasks = [count_letter(word=w) for w in ("strawberry", "raspberry", "blueberry")]


@count_letter.solution
def solve(word: str, letter: str) -> str:
    return str(word.count(letter))
