"""
The text side of EmojiWorld: OpenFlamingo prompt templates, the fixed set of question templates,
and segments -> text. Every string the model is trained or evaluated on is built here.

    naming / captioning   Output: {name}.                      query: Output:
    question answering    Question: {q} Short answer: {a}      query: Question: {q} Short answer:
"""

IMAGE = '<image>'
EOC = '<|endofchunk|>'
CAPTION_QUERY = 'Output:'

COUNT_WORDS = ('zero', 'one', 'two', 'three', 'four')  # for textual scene stand-ins


def caption(label):
    return f'Output: {label}.'


def qa(question, answer):
    return f'Question: {question} Short answer: {answer}'


def question_query(question):
    return f'Question: {question} Short answer:'


def to_text(segments, close_last=True):
    """OpenFlamingo string, as src/engine/prompt.ts writes it: each visual segment -> <image>; a
    text chunk that another segment follows is closed with <|endofchunk|> (so text-only zero-shot
    examples stay separate chunks), and the last one too when close_last, as in training."""
    out = []
    for k, seg in enumerate(segments):
        if 'text' in seg:
            out.append(seg['text'])
            if k < len(segments) - 1 or close_last:
                out.append(EOC)
        else:
            out.append(IMAGE)
    return ''.join(out)


# -----------------------------------------------------------------------------
# scene questions: (question, answer) pairs that the facts of images.scene() make unambiguous

SIDES = {  # question word -> (coordinate, pick smallest?)
    'left': ('x', True), 'right': ('x', False), 'top': ('y', True), 'bottom': ('y', False),
}
MIN_SIDE_GAP = 4.0  # pixels between the extreme object and the next one, so 'which' is clear


def scene_qas(facts, name_of, absent=None):
    """All questions this scene answers. name_of maps a fact's concept to its (English) name;
    absent is the name of a concept not in the scene, for a 'no' answer."""
    objs = facts['objects']
    names = [name_of(o['concept']) for o in objs]
    out = [('how many emoji?', str(facts['count'])),
           ('what colour is the background?', facts['background'])]
    for n in sorted(set(names)):
        out.append((f'how many {n}?', str(names.count(n))))
        out.append((f'is there a {n}?', 'yes'))
    if absent is not None and absent not in names:
        out.append((f'is there a {absent}?', 'no'))
    if len(set(names)) >= 2:
        for side, (axis, smallest) in SIDES.items():
            order = sorted(range(len(objs)), key=lambda i: objs[i][axis], reverse=not smallest)
            first, second = objs[order[0]][axis], objs[order[1]][axis]
            # clear winner, or a tie between two copies of the same concept
            if abs(first - second) >= MIN_SIDE_GAP or names[order[0]] == names[order[1]]:
                out.append((f'which is on the {side}?', names[order[0]]))
    return out


def scene_stand_in(facts, name_of):
    """A textual stand-in for a scene image, for text-only LM pretraining."""
    parts = [f"{name_of(o['concept'])} at {int(o['x'])} {int(o['y'])}" for o in facts['objects']]
    return f"{COUNT_WORDS[facts['count']]} on {facts['background']}: " + ', '.join(parts) + '.'


# -----------------------------------------------------------------------------
# clips

def clip_caption(facts, name_of):
    a = name_of(facts['concept'])
    event = facts['event']
    if event == 'move':
        return f"{a} moves {facts['direction']}"
    if event == 'turn':
        return f"{a} turns into {name_of(facts['other'])}"
    return f'{a} {event}s'  # appears / disappears


def clip_qas(facts, name_of):
    a = name_of(facts['concept'])
    event = facts['event']
    if event == 'move':
        return [('what moved?', a), (f'which way did the {a} move?', facts['direction'])]
    if event == 'appear':
        return [('what appeared?', a)]
    if event == 'disappear':
        return [('what disappeared?', a)]
    return [(f'what did the {a} turn into?', name_of(facts['other']))]


def clip_stand_in(facts, name_of):
    return clip_caption(facts, name_of) + '.'
