/** The dashboard's entry: a token in the URL's fragment is taken first, then the app renders. */
import { render } from 'preact';
import { takeTokenFromFragment } from './api.ts';
import { App } from './app.tsx';
import './style.css';

takeTokenFromFragment();
render(<App />, document.getElementById('app')!);
