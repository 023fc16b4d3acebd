export default { notAModule: true };
