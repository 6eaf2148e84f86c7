// The answer view's page script (extension/src/answer-view.ts owns the panel).
// It only renders what the extension posts; the Markdown arrives as HTML that
// markdown-it produced with raw HTML off, so nothing from the model runs here.
// @ts-check
(function () {
  // eslint-disable-next-line no-undef
  const vscode = acquireVsCodeApi();
  const turns = /** @type {HTMLElement} */ (document.getElementById('turns'));
  const form = /** @type {HTMLFormElement} */ (document.getElementById('ask'));
  const question = /** @type {HTMLTextAreaElement} */ (document.getElementById('question'));
  const send = /** @type {HTMLButtonElement} */ (document.getElementById('send'));
  const stop = /** @type {HTMLButtonElement} */ (document.getElementById('stop'));
  // A polite live region told once per finished answer (the streamed answer itself is not live: it re-renders every 50 ms).
  const announce = /** @type {HTMLElement} */ (document.getElementById('announce'));
  // What VS Code hands back to the extension after a window reload (SavedAnswerView in answer-view.ts).
  // The extension replays it into a fresh page, so the page starts from an empty conversation.
  /** @type {{ images: string[], turns: any[] }} (each turn keeps the images it was asked about) */
  const saved = { images: [], turns: [] };
  const save = () => vscode.setState(saved);

  /** @param {number} index */
  function turnElement(index) {
    let el = document.getElementById(`turn-${index}`);
    if (!el) {
      el = document.createElement('section');
      el.id = `turn-${index}`;
      el.className = 'turn streaming';
      el.innerHTML = '<p class="question"></p><div class="answer"></div><footer><span class="badge"></span><details><summary>details</summary><pre class="details"></pre></details><ul class="notes"></ul></footer>';
      turns.appendChild(el);
    }
    return el;
  }

  window.addEventListener('message', (event) => {
    const m = event.data;
    switch (m.type) {
      case 'init':
        saved.images = m.images;
        saved.turns = [];
        save();
        break;
      case 'images': {
        // A new set of images: their thumbnails above the first question about them.
        saved.images = m.images;
        save();
        const header = document.createElement('header');
        header.className = 'images';
        header.id = `images-${m.index}`;
        for (const t of m.thumbs) {
          const figure = document.createElement('figure');
          const img = Object.assign(document.createElement('img'), { src: t.src, alt: '' });
          figure.append(img, Object.assign(document.createElement('figcaption'), { textContent: t.name }));
          header.appendChild(figure);
        }
        turns.appendChild(header);
        break;
      }
      case 'turn': {
        saved.turns[m.index] = { question: m.question, images: m.images, state: 'streaming' };
        save();
        const el = turnElement(m.index);
        /** @type {HTMLElement} */ (el.querySelector('.question')).textContent = m.question;
        el.scrollIntoView({ block: 'end' });
        break;
      }
      case 'answer': {
        const el = turnElement(m.index);
        /** @type {HTMLElement} */ (el.querySelector('.answer')).innerHTML = m.html;
        el.scrollIntoView({ block: 'end' });
        break;
      }
      case 'progress': {
        // "queued", "loading the model", "generating": shown in the badge until the answer is done.
        const el = turnElement(m.index);
        if (el.classList.contains('streaming')) /** @type {HTMLElement} */ (el.querySelector('.badge')).textContent = `${m.message}…`;
        break;
      }
      case 'done': {
        const el = turnElement(m.index);
        el.classList.remove('streaming');
        el.classList.add(m.state);
        const badge = /** @type {HTMLElement} */ (el.querySelector('.badge'));
        badge.textContent = m.badge;
        badge.classList.remove('hit', 'partial', 'miss');
        badge.classList.add(m.tone ?? (m.hit ? 'hit' : 'miss'));
        /** @type {HTMLElement} */ (el.querySelector('.details')).textContent = m.details;
        /** @type {HTMLElement} */ (el.querySelector('details')).hidden = !m.details;
        const notes = /** @type {HTMLElement} */ (el.querySelector('.notes'));
        notes.replaceChildren(...m.notes.map((/** @type {string} */ n) => Object.assign(document.createElement('li'), { textContent: n })));
        saved.turns[m.index] = { ...saved.turns[m.index], text: m.text, badge: m.badge, hit: m.hit, tone: m.tone, details: m.details, notes: m.notes, state: m.state };
        save();
        if (m.live !== false) {
          const answer = /** @type {HTMLElement} */ (el.querySelector('.answer')).textContent ?? '';
          announce.textContent = m.state === 'done' ? `Answer ${m.index + 1}: ${answer.trim()} (${m.badge})` : `Answer ${m.index + 1} ${m.state}.`;
        }
        break;
      }
      case 'busy':
        stop.disabled = !m.busy;
        // The follow-up box takes the focus when an answer ends (keyboard users type the next question at once).
        if (!m.busy) question.focus();
        document.body.classList.toggle('busy', m.busy);
        break;
    }
  });

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = question.value.trim();
    if (!q) return;
    vscode.postMessage({ type: 'ask', question: q });
    question.value = '';
  });
  question.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      form.requestSubmit(send);
    }
  });
  stop.addEventListener('click', () => vscode.postMessage({ type: 'stop' }));
})();
