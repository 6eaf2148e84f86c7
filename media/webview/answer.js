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

  // Icons of the code-block actions, drawn like VS Code's codicons (16×16, currentColor: they follow the theme).
  const ICONS = {
    copy: '<rect x="5.5" y="5.5" width="8" height="9" rx="1"/><path d="M3.5 10.5h-1a1 1 0 0 1-1-1v-7a1 1 0 0 1 1-1h7a1 1 0 0 1 1 1v1"/>',
    insert: '<path d="M8 1.5v8M4.5 6 8 9.5 11.5 6M2 13.5h12"/>',
    newFile: '<path d="M9.5 1.5h-6a1 1 0 0 0-1 1v11a1 1 0 0 0 1 1h9a1 1 0 0 0 1-1v-8zM9.5 1.5v4h4M8 8v5M5.5 10.5h5"/>',
  };
  /** [action, visible label, what the aria-label says it does] */
  const ACTIONS = /** @type {const} */ ([
    ['copy', 'Copy', 'Copy'],
    ['insert', 'Insert', 'Insert at cursor'],
    ['newFile', 'New File', 'Open in a new file'],
  ]);

  /**
   * Puts Copy / Insert at Cursor / New File buttons above every code block of an answer (after each render: the
   * answer's HTML is replaced while it streams). A button sends the block's text and fence language; the
   * extension checks the message (answer-messages.ts) before it acts.
   * @param {HTMLElement} answer @param {number} turnIndex
   */
  function addCodeActions(answer, turnIndex) {
    answer.querySelectorAll('pre > code').forEach((code, i) => {
      const pre = /** @type {HTMLElement} */ (code.parentElement);
      const language = (/(?:^|\s)language-(\S+)/.exec(code.className) ?? [])[1] ?? '';
      const bar = document.createElement('div');
      bar.className = 'code-actions';
      bar.setAttribute('role', 'group');
      const name = `code block ${i + 1}${language ? ` (${language})` : ''} of answer ${turnIndex + 1}`;
      bar.setAttribute('aria-label', name);
      for (const [action, label, verb] of ACTIONS) {
        const button = document.createElement('button');
        button.type = 'button';
        button.className = 'code-action';
        button.dataset.action = action;
        button.setAttribute('aria-label', `${verb}: ${name}`);
        button.title = verb;
        button.innerHTML = `<svg viewBox="0 0 16 16" width="16" height="16" aria-hidden="true" focusable="false">${ICONS[action]}</svg>`;
        button.append(Object.assign(document.createElement('span'), { textContent: label }));
        // A <button>: Enter and Space press it like a click.
        // The block's text without the newline that ends every fence (Insert replaces a selection with the code alone).
        button.addEventListener('click', () => vscode.postMessage({ type: 'code', action, code: (code.textContent ?? '').replace(/\n$/, ''), language }));
        bar.appendChild(button);
      }
      pre.before(bar);
    });
  }

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
        const answer = /** @type {HTMLElement} */ (el.querySelector('.answer'));
        // The answer re-renders while it streams: a focused code-block button keeps the focus (same block, same action).
        const focused = document.activeElement instanceof HTMLElement && answer.contains(document.activeElement) ? document.activeElement : undefined;
        const focusedAt = focused?.dataset.action ? [[...answer.querySelectorAll('.code-actions')].indexOf(/** @type {Element} */ (focused.parentElement)), focused.dataset.action] : undefined;
        answer.innerHTML = m.html;
        addCodeActions(answer, m.index);
        if (focusedAt) /** @type {HTMLElement | null} */ (answer.querySelectorAll('.code-actions')[/** @type {number} */ (focusedAt[0])]?.querySelector(`[data-action="${focusedAt[1]}"]`))?.focus();
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
          // The answer's words without the code-block buttons' labels.
          const text = /** @type {HTMLElement} */ (el.querySelector('.answer').cloneNode(true));
          text.querySelectorAll('.code-actions').forEach((bar) => bar.remove());
          const answer = text.textContent ?? '';
          announce.textContent = m.state === 'done' ? `Answer ${m.index + 1}: ${answer.trim()} (${m.badge})` : `Answer ${m.index + 1} ${m.state}.`;
        }
        break;
      }
      case 'busy':
        stop.disabled = !m.busy;
        // The follow-up box takes the focus when an answer ends (keyboard users type the next question at once), but
        // only while the view has it: a user who went to another editor or Quick Open keeps the focus there.
        if (!m.busy && document.hasFocus()) question.focus();
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
  // Focus coming to the view (a keyboard user switching to it) lands in the follow-up box, unless an element of the
  // page still has it (the page loses its focused element while the view is hidden behind another editor).
  window.addEventListener('focus', () => { if (!document.activeElement || document.activeElement === document.body) question.focus(); });
  // The extension holds its messages (the conversation to replay) until the listener above exists.
  vscode.postMessage({ type: 'ready' });
})();
