// shorter-wins.test.ts — the judge contract on real shipped AlpacaEval answers.
import { judgeContract } from '@quorum/eval/testing';
import { shorterWins } from './judge.js';

judgeContract.run([{ name: 'shorter-wins', create: () => shorterWins({ temperature: 50 }) }]);
