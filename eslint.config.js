// Lint: typescript-eslint's type-aware rules, chiefly against floating promises.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/**', '.cache/**', 'eslint.config.js', 'vitest.config.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  // The web console: plain browser ES modules, served as they are (no TypeScript, no build).
  {
    files: ['server/console/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      sourceType: 'module',
      parserOptions: { project: null },
      globals: Object.fromEntries(
        ['window', 'document', 'fetch', 'sessionStorage', 'location', 'history', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'FormData', 'URLSearchParams', 'URL', 'Intl', 'HTMLElement', 'Event', 'console', 'TextDecoder', 'AbortController'].map((g) => [g, 'readonly']),
      ),
    },
  },
);
