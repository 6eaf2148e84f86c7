// @vscode/test-cli configuration: extension tests in desktop VS Code, for machines
// that can download it. Offline (this project's CI), the same tests run in
// code-server; see ../shared/TESTING-VSCODE.md and the editor issue.
import { defineConfig } from '@vscode/test-cli';

export default defineConfig({
  files: 'out/test/e2e/**/*.test.js',
  workspaceFolder: 'test/fixtures/workspace',
  mocha: { timeout: 60000 },
});
